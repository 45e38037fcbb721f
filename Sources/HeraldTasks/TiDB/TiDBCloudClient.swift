// The TiDB Cloud serverless API over blocking libcurl with HTTP Digest authentication, for the
// TiDB pool tasks on their executor thread. Every HTTP call goes through `guarded` (the runtime
// puts the `tidb_api` circuit breaker there) and each failure is counted. `batchCreate` and
// `batchGet` are tried at most `attempts` times with a short backoff, then the last failure is
// thrown: a persistent failure ends the run instead of looping, as Dify's loop does.

import Glibc
import HeraldCore
import HeraldIO

/// Why a TiDB Cloud call failed.
public enum TiDBAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call could not be made (connect, timeout, TLS): curl's message.
    case transport(call: String, message: String)
    /// The API answered with a status other than 200 (401: the keys were refused).
    case status(call: String, code: Int)
    /// The answer could not be read.
    case answer(TiDBAnswerError)
    /// The `tidb_api` breaker refused the call without trying it (it opened after repeated failures).
    case circuitOpen(String)

    public var description: String {
        switch self {
        case .transport(let call, let message): return "TiDB Cloud \(call) failed: \(message)"
        case .status(let call, let code): return "TiDB Cloud \(call) answered HTTP \(code)"
        case .answer(let e): return e.description
        case .circuitOpen(let why): return why
        }
    }
}

/// A blocking client of the TiDB Cloud serverless API.
public struct TiDBCloudClient: Sendable {
    /// Runs one HTTP call; the runtime wraps it in the `tidb_api` breaker and maps a refusal to
    /// ``TiDBAPIError/circuitOpen(_:)``.
    public typealias Guard = @Sendable (() throws -> [UInt8]) throws -> [UInt8]

    public let apiURL: String
    let credentials: HTTPDigestCredentials
    let guarded: Guard
    let failed: @Sendable (String) -> Void
    let attempts: Int
    let backoffBase: Duration
    let sleep: @Sendable (Duration) -> Void
    let timeout: Duration

    /// - Parameters:
    ///   - failed: called with the call's name (`batch_create`, `batch_get`, `get_cluster`) for each failed call.
    ///   - attempts: tries of `batchCreate` and `batchGet` (default 3), waiting `backoffBase`, then twice that.
    public init(
        apiURL: String, credentials: HTTPDigestCredentials, guarded: @escaping Guard = { try $0() },
        failed: @escaping @Sendable (String) -> Void = { _ in }, attempts: Int = 3,
        backoffBase: Duration = .milliseconds(500),
        sleep: @escaping @Sendable (Duration) -> Void = TiDBCloudClient.blockingSleep,
        timeout: Duration = .seconds(30)
    ) {
        self.apiURL = apiURL
        self.credentials = credentials
        self.guarded = guarded
        self.failed = failed
        self.attempts = max(1, attempts)
        self.backoffBase = backoffBase
        self.sleep = sleep
        self.timeout = timeout
    }

    /// Blocks the calling (executor) thread for `d`.
    public static let blockingSleep: @Sendable (Duration) -> Void = { d in
        var ts = timespec(tv_sec: Int(d.components.seconds), tv_nsec: Int(d.components.attoseconds / 1_000_000_000))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }

    /// `POST /clusters:batchCreate`: asks for `clusters`; returns the clusters the API created.
    public func batchCreate(
        _ clusters: [TiDBClusterSpec], region: String, projectID: String, spendLimit: Int
    ) throws(TiDBAPIError) -> [TiDBCreatedCluster] {
        let body = Array(
            TiDBCloudMessages.batchCreateBody(clusters, region: region, projectID: projectID, spendLimit: spendLimit)
                .utf8)
        return try retrying { () throws(TiDBAPIError) in
            try call("batch_create", apiURL + "/clusters:batchCreate", body: body, TiDBCloudMessages.createdClusters)
        }
    }

    /// `GET /clusters:batchGet?clusterIds=…&view=BASIC`: the state of each of `clusterIDs`.
    public func batchGet(_ clusterIDs: [String]) throws(TiDBAPIError) -> [TiDBClusterState] {
        let url = apiURL + "/clusters:batchGet?" + TiDBCloudMessages.batchGetQuery(clusterIDs)
        return try retrying { () throws(TiDBAPIError) in
            try call("batch_get", url, body: nil, TiDBCloudMessages.clusterStates)
        }
    }

    /// `GET /clusters/{id}`, tried once (a missing endpoint is filled by a later status run).
    public func cluster(_ clusterID: String) throws(TiDBAPIError) -> TiDBClusterState {
        try call(
            "get_cluster", apiURL + "/clusters/" + TiDBCloudMessages.percentEncoded(clusterID), body: nil,
            TiDBCloudMessages.cluster)
    }

    /// Tries `body` up to `attempts` times. A refusal by the breaker ends the tries at once: the
    /// refusal itself when nothing was tried yet (the run defers), else the last real failure.
    private func retrying<T>(_ body: () throws(TiDBAPIError) -> T) throws(TiDBAPIError) -> T {
        var last: TiDBAPIError?
        for attempt in 1...attempts {
            do {
                return try body()
            } catch .circuitOpen(let why) {
                throw last ?? .circuitOpen(why)
            } catch {
                last = error
                if attempt < attempts { sleep(backoffBase * (1 << (attempt - 1))) }
            }
        }
        throw last!
    }

    /// One HTTP call through the guard, its answer decoded inside it (an unreadable answer is a
    /// failure of the API too); a failure is counted once and thrown.
    private func call<T>(
        _ name: String, _ url: String, body: [UInt8]?, _ decode: ([UInt8]) throws(TiDBAnswerError) -> T
    ) throws(TiDBAPIError) -> T {
        var decoded: T?
        do {
            _ = try guarded {
                let r: (status: Int, body: [UInt8])
                do {
                    if let body {
                        r = try HTTPClient.post(
                            url, body: body, headers: ["Content-Type: application/json", "Accept: application/json"],
                            digest: credentials, timeout: timeout)
                    } else {
                        r = try HTTPClient.get(
                            url, headers: ["Accept: application/json"], digest: credentials, timeout: timeout)
                    }
                } catch {
                    throw TiDBAPIError.transport(call: name, message: "\(error)")
                }
                guard r.status == 200 else { throw TiDBAPIError.status(call: name, code: r.status) }
                do throws(TiDBAnswerError) { decoded = try decode(r.body) } catch { throw TiDBAPIError.answer(error) }
                return r.body
            }
            return decoded!
        } catch let e as TiDBAPIError {
            if case .circuitOpen = e {} else { failed(name) }
            throw e
        } catch {
            failed(name)
            throw .transport(call: name, message: "\(error)")
        }
    }
}
