// Redis replies read from raw bytes: hiredis' reply parser, the one both Redis clients
// use underneath, fed by hand, with the same bound on array headers (herald_shim.h). The pub/sub frame rules that RedisConnection applies to
// every subscription message live here too, so that both can be exercised without a
// server (the fuzz target in Fuzz/ and HeraldIOTests).

import CHeraldShim
import CHiredis

/// What one reply on a subscribed connection means to Herald.
public enum PubSubFrame: Sendable, Equatable {
    /// A `message` on the subscribed channel, with its payload.
    case message([UInt8])
    /// A `subscribe` confirmation.
    case subscribed
    /// Anything else (other kinds, malformed frames): ignored.
    case other

    /// Classifies a reply in hiredis' form (RedisConnection's subscription callback).
    static func classify(_ r: UnsafePointer<redisReply>) -> PubSubFrame {
        let reply = r.pointee
        guard reply.type == REDIS_REPLY_ARRAY, reply.elements >= 3, let element = reply.element,
            let kindReply = element[0],
            kindReply.pointee.type == REDIS_REPLY_STRING
                || kindReply.pointee.type == REDIS_REPLY_STATUS,
            let kind = kindReply.pointee.str, kindReply.pointee.len > 0, let last = element[2]
        else { return .other }
        switch UInt8(bitPattern: kind[0]) {
        case UInt8(ascii: "m"):
            // A payload that is not a bulk string (no server sends one) is handed on empty, so
            // the decoder rejects and counts it rather than it vanishing.
            let p = last.pointee
            guard p.type == REDIS_REPLY_STRING else { return .message([]) }
            return .message(p.str.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(p.len))) } ?? [])
        case UInt8(ascii: "s"):
            return .subscribed
        default:
            return .other
        }
    }
}

/// A RESP parser over bytes handed to it; replies come out as they complete.
public final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        guard let r = redisReaderCreate() else { fatalError("redisReaderCreate: out of memory") }
        herald_redis_limit_reader(r)
        reader = r
    }

    deinit { redisReaderFree(reader) }

    /// Appends bytes to the parser's buffer.
    public func feed<C: Collection>(_ bytes: C) throws(IOError) where C.Element == UInt8 {
        let rc = Array(bytes).withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        guard rc == REDIS_OK else { throw IOError.redisReply(message: "RESP reader: \(errorText)") }
    }

    /// The next complete reply and its pub/sub meaning, nil when more bytes are needed; a
    /// protocol error throws (the connection would be dropped).
    public func next() throws(IOError) -> (value: RedisValue, frame: PubSubFrame)? {
        var out: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &out) == REDIS_OK else {
            throw IOError.redisReply(message: "RESP reader: \(errorText)")
        }
        guard let out else { return nil }
        let reply = UnsafePointer(out.assumingMemoryBound(to: redisReply.self))
        defer { freeReplyObject(out) }
        return (RedisValue(reply), PubSubFrame.classify(reply))
    }

    private var errorText: String {
        RedisReaderError.describe(
            withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
    }
}

/// hiredis' reader errors, with what Herald's bound adds to them.
enum RedisReaderError {
    /// hiredis 0.14 says "Out of memory" when the bound refuses an array header too.
    static func describe(_ text: String) -> String {
        text == "Out of memory"
            ? "\(text) (or a reply declaring an array of more than \(HERALD_REDIS_MAX_ARRAY_ELEMENTS) elements)" : text
    }
}
