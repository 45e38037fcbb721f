// The reply parser both Redis clients use, and the pub/sub frame rules of a subscribed
// connection, on bytes given by hand (the fuzz target fuzz-resp drives the same code).

import HeraldIO
import XCTest

final class RESPReaderTests: XCTestCase {
    private func replies(_ chunks: [String]) throws -> [(RedisValue, PubSubFrame)] {
        let reader = RESPReader()
        var out: [(RedisValue, PubSubFrame)] = []
        for c in chunks {
            try reader.feed(Array(c.utf8))
            while let r = try reader.next() { out.append(r) }
        }
        return out
    }

    func testEveryReplyTypeAcrossSplitReads() throws {
        let got = try replies(["+OK\r\n-ERR no\r\n:4", "2\r\n$3\r\nab", "c\r\n$-1\r\n*2\r\n:1\r\n*0\r\n"])
        XCTAssertEqual(
            got.map(\.0),
            [
                .status("OK"), .error("ERR no"), .integer(42), .string(Array("abc".utf8)), .null,
                .array([.integer(1), .array([])]),
            ])
        XCTAssertTrue(got.allSatisfy { $0.1 == .other })
    }

    func testMessageAndSubscribeFrames() throws {
        let got = try replies([
            "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
            "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhel\0o\r\n",
        ])
        XCTAssertEqual(got.map(\.1), [.subscribed, .message(Array("hel\0o".utf8))])
    }

    /// Frames a subscribed connection must not misread: too short, a kind that is not a string, an
    /// empty kind are ignored; a message whose payload is not a bulk string is handed on empty
    /// (the event decoder rejects and counts it).
    func testMalformedFramesAreIgnored() throws {
        let got = try replies([
            "*2\r\n$7\r\nmessage\r\n$2\r\nch\r\n",
            "*3\r\n:1\r\n$2\r\nch\r\n$1\r\nx\r\n",
            "*3\r\n$0\r\n\r\n$2\r\nch\r\n$1\r\nx\r\n",
            "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n*1\r\n:1\r\n",
        ])
        XCTAssertEqual(got.map(\.1), [.other, .other, .other, .message([])])
    }

    func testProtocolErrorThrows() throws {
        let reader = RESPReader()
        try reader.feed(Array("?what\r\n".utf8))
        XCTAssertThrowsError(try reader.next())
    }

    /// An array header is refused above 2^20 elements, before hiredis allocates anything for it
    /// (found by fuzz-resp: "*344444444" made it allocate 2.7 GB); 2^20 itself is read.
    func testAHugeArrayHeaderIsAnErrorNotAnAllocation() throws {
        let reader = RESPReader()
        try reader.feed(Array("*2000000000\r\n".utf8))
        XCTAssertThrowsError(try reader.next()) { XCTAssertTrue("\($0)".contains("more than 1048576"), "\($0)") }
        let ok = RESPReader()
        try ok.feed(Array("*1048576\r\n".utf8) + Array(repeating: Array(":1\r\n".utf8), count: 1 << 20).flatMap { $0 })
        guard case .array(let items)? = try ok.next()?.value else { return XCTFail("no array") }
        XCTAssertEqual(items.count, 1 << 20)
    }
}
