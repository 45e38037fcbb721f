// Blocking HTTP GET and POST through libcurl, for the command line (`herald status`
// reads the daemon's /healthz) and for tasks on executor threads (the billing API, the
// TiDB Cloud API with HTTP Digest authentication); never called on the loop thread.

import CCurl
import CHeraldShim

/// A user name and password for HTTP Digest authentication. Its description never shows the password.
public struct HTTPDigestCredentials: Sendable, CustomStringConvertible {
    public let user: String
    public let password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    public var description: String { "digest user \(user)" }
}

/// Blocking HTTP requests for command-line use.
public enum HTTPClient {
    final class Sink {
        var bytes: [UInt8] = []
    }

    /// GETs `url` with extra request `headers` ("Name: value"); returns the status and body.
    /// With `digest`, curl answers the server's Digest challenge with those credentials.
    public static func get(
        _ url: String, headers: [String] = [], digest: HTTPDigestCredentials? = nil, timeout: Duration = .seconds(5)
    ) throws(IOError) -> (status: Int, body: [UInt8]) {
        try perform(url, headers: headers, body: nil, digest: digest, timeout: timeout)
    }

    /// POSTs `body` to `url` with extra request `headers` ("Name: value"); returns the status and body.
    /// With `digest`, curl answers the server's Digest challenge with those credentials.
    public static func post(
        _ url: String, body: [UInt8], headers: [String] = [], digest: HTTPDigestCredentials? = nil,
        timeout: Duration = .seconds(5)
    ) throws(IOError) -> (status: Int, body: [UInt8]) {
        try perform(url, headers: headers, body: body, digest: digest, timeout: timeout)
    }

    private static func perform(
        _ url: String, headers: [String], body: [UInt8]?, digest: HTTPDigestCredentials?, timeout: Duration
    ) throws(IOError) -> (status: Int, body: [UInt8]) {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        guard let h = curl_easy_init() else { throw IOError.curl(call: "curl_easy_init", message: "out of memory") }
        defer { curl_easy_cleanup(h) }
        let sink = Sink()
        let ctx = Unmanaged.passUnretained(sink).toOpaque()
        _ = herald_curl_setopt_string(h, CURLOPT_URL, url)
        _ = herald_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(timeout.milliseconds))
        _ = herald_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = herald_curl_setopt_pointer(h, CURLOPT_WRITEDATA, ctx)
        _ = herald_curl_setopt_writefunction(h) { ptr, size, n, user in
            let s = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let count = size * n
            if let ptr { s.bytes.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: count)) }
            return count
        }
        if let digest {
            let rc = herald_curl_set_digest_auth(h, digest.user, digest.password)
            guard rc == CURLE_OK else {
                throw IOError.curl(
                    call: "curl_easy_setopt(CURLOPT_HTTPAUTH)", message: String(cString: curl_easy_strerror(rc)))
            }
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers { list = curl_slist_append(list, header) }
        defer { if let list { curl_slist_free_all(list) } }
        if let list { _ = herald_curl_setopt_pointer(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
        if let body {
            // POSTFIELDSIZE first, so COPYPOSTFIELDS copies exactly these bytes (NULs included).
            _ = herald_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, body.count)
            let bytes = body.isEmpty ? [0] : body
            _ = bytes.withUnsafeBytes { b in
                herald_curl_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: b.baseAddress!))
            }
        }
        let rc = curl_easy_perform(h)
        guard rc == CURLE_OK else {
            throw IOError.curl(call: "curl_easy_perform(\(url))", message: String(cString: curl_easy_strerror(rc)))
        }
        var status = 0
        _ = herald_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return (status, sink.bytes)
    }
}
