// Redis replies as Swift values. The conversion from hiredis' `redisReply`
// happens here, inside HeraldIO, so no C pointer escapes it.

import CHiredis

/// A Redis reply.
public enum RedisValue: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case error(String)
    case integer(Int64)
    case array([RedisValue])
    case null

    init(_ r: UnsafePointer<redisReply>) {
        let reply = r.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            self = .string(reply.str.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(reply.len))) } ?? [])
        case REDIS_REPLY_STATUS:
            self = .status(
                reply.str.map {
                    String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(reply.len)), as: UTF8.self)
                } ?? "")
        case REDIS_REPLY_ERROR:
            self = .error(
                reply.str.map {
                    String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(reply.len)), as: UTF8.self)
                } ?? "")
        case REDIS_REPLY_INTEGER:
            self = .integer(reply.integer)
        case REDIS_REPLY_ARRAY:
            var items: [RedisValue] = []
            items.reserveCapacity(Int(reply.elements))
            for i in 0..<Int(reply.elements) {
                if let e = reply.element[i] { items.append(RedisValue(e)) } else { items.append(.null) }
            }
            self = .array(items)
        default:
            self = .null
        }
    }

    /// The value as text when it is a bulk string or status.
    public var text: String? {
        switch self {
        case .string(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    /// The value as an integer when it is one.
    public var integer: Int64? {
        if case .integer(let i) = self { return i }
        return nil
    }
}

/// Builds the argv arrays hiredis wants from Swift byte arrays.
enum RedisArgv {
    static func with<R>(
        _ args: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        var lengths = args.map { $0.count }
        // One contiguous buffer holds every argument; hiredis copies them while formatting.
        var storage: [UInt8] = []
        storage.reserveCapacity(lengths.reduce(0, +) + args.count)
        var offsets: [Int] = []
        for a in args {
            offsets.append(storage.count)
            storage.append(contentsOf: a)
            storage.append(0)
        }
        return storage.withUnsafeBufferPointer { buf in
            let basePtr = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { basePtr + $0 }
            return argv.withUnsafeMutableBufferPointer { av in
                lengths.withUnsafeMutableBufferPointer { lens in
                    body(Int32(args.count), av.baseAddress!, UnsafePointer(lens.baseAddress!))
                }
            }
        }
    }
}
