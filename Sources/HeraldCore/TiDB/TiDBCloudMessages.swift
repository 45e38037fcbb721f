// The TiDB Cloud serverless API as the two TiDB pool tasks use it, without I/O: the body of
// `POST /clusters:batchCreate`, the query of `GET /clusters:batchGet`, and what Herald reads
// back from the answers (the created clusters, their state and user prefix, the qdrant endpoint
// derived from `endpoints.public.host`). Answers that do not have the expected shape are errors
// naming the field, never a trap.

/// One cluster to create: its display name and root password (both random hex).
public struct TiDBClusterSpec: Sendable, Hashable {
    public let displayName: String
    public let rootPassword: String

    public init(displayName: String, rootPassword: String) {
        self.displayName = displayName
        self.rootPassword = rootPassword
    }
}

/// A cluster as `batchCreate` returns it.
public struct TiDBCreatedCluster: Sendable, Hashable {
    public let clusterID: String
    public let displayName: String

    public init(clusterID: String, displayName: String) {
        self.clusterID = clusterID
        self.displayName = displayName
    }
}

/// A cluster as `batchGet` (view BASIC) or `GET /clusters/{id}` returns it.
public struct TiDBClusterState: Sendable, Hashable {
    public let clusterID: String
    /// `CREATING`, `ACTIVE`, …
    public let state: String
    /// The prefix of the cluster's SQL users (`<prefix>.root`); empty until the cluster is ready.
    public let userPrefix: String
    /// `https://qdrant-<endpoints.public.host>` when the answer carries the host.
    public let qdrantEndpoint: String?

    public init(clusterID: String, state: String, userPrefix: String, qdrantEndpoint: String?) {
        self.clusterID = clusterID
        self.state = state
        self.userPrefix = userPrefix
        self.qdrantEndpoint = qdrantEndpoint
    }
}

/// An answer of the TiDB Cloud API that Herald cannot read.
public struct TiDBAnswerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call (`batch_create`, `batch_get`, `get_cluster`).
    public let call: String
    /// What is wrong with it.
    public let reason: String

    public init(call: String, reason: String) {
        self.call = call
        self.reason = reason
    }

    public var description: String { "TiDB Cloud \(call) answer unreadable: \(reason)" }
}

/// Requests and answers of the TiDB Cloud serverless API.
public enum TiDBCloudMessages {
    /// Clusters per `batchCreate` and per `batchGet`, as Dify sends them.
    public static let batchSize = 20

    /// `{"requests":[{"cluster":{displayName, region:{name}, labels:{"tidb.cloud/project"}, spendingLimit:{monthly}, rootPassword}}]}`.
    public static func batchCreateBody(
        _ clusters: [TiDBClusterSpec], region: String, projectID: String, spendLimit: Int
    ) -> String {
        let items = clusters.map { c in
            "{\"cluster\":{\"displayName\":\(JSONText.quote(c.displayName)),"
                + "\"region\":{\"name\":\(JSONText.quote(region))},"
                + "\"labels\":{\"tidb.cloud/project\":\(JSONText.quote(projectID))},"
                + "\"spendingLimit\":{\"monthly\":\(spendLimit)},"
                + "\"rootPassword\":\(JSONText.quote(c.rootPassword))}}"
        }
        return "{\"requests\":[" + items.joined(separator: ",") + "]}"
    }

    /// `clusterIds=a&clusterIds=b&view=BASIC`: the list repeated, as Dify's HTTP client encodes it.
    public static func batchGetQuery(_ clusterIDs: [String]) -> String {
        (clusterIDs.map { "clusterIds=" + percentEncoded($0) } + ["view=BASIC"]).joined(separator: "&")
    }

    /// The created clusters of a `batchCreate` answer (`clusters[].clusterId`, `.displayName`).
    public static func createdClusters(_ body: [UInt8]) throws(TiDBAnswerError) -> [TiDBCreatedCluster] {
        let call = "batch_create"
        var out: [TiDBCreatedCluster] = []
        for item in try clusters(body, call: call) {
            guard let id = text(item["clusterId"]), let name = text(item["displayName"]) else {
                throw TiDBAnswerError(call: call, reason: "a cluster without clusterId or displayName")
            }
            out.append(TiDBCreatedCluster(clusterID: id, displayName: name))
        }
        return out
    }

    /// The clusters of a `batchGet` answer.
    public static func clusterStates(_ body: [UInt8]) throws(TiDBAnswerError) -> [TiDBClusterState] {
        var out: [TiDBClusterState] = []
        for item in try clusters(body, call: "batch_get") { out.append(try state(item, call: "batch_get")) }
        return out
    }

    /// The cluster of a `GET /clusters/{id}` answer.
    public static func cluster(_ body: [UInt8]) throws(TiDBAnswerError) -> TiDBClusterState {
        try state(try parse(body, call: "get_cluster"), call: "get_cluster")
    }

    /// `https://qdrant-<endpoints.public.host>`, or nil without a host.
    public static func qdrantEndpoint(_ cluster: JSONValue) -> String? {
        guard let host = text(cluster["endpoints"]?["public"]?["host"]), !host.isEmpty else { return nil }
        return "https://qdrant-" + host
    }

    private static func state(_ item: JSONValue, call: String) throws(TiDBAnswerError) -> TiDBClusterState {
        guard let id = text(item["clusterId"]) else {
            throw TiDBAnswerError(call: call, reason: "a cluster without clusterId")
        }
        return TiDBClusterState(
            clusterID: id, state: text(item["state"]) ?? "", userPrefix: text(item["userPrefix"]) ?? "",
            qdrantEndpoint: qdrantEndpoint(item))
    }

    private static func clusters(_ body: [UInt8], call: String) throws(TiDBAnswerError) -> [JSONValue] {
        switch try parse(body, call: call)["clusters"] {
        case .array(let items)?: return items
        case .null?, nil: return []
        default: throw TiDBAnswerError(call: call, reason: "clusters is not a list")
        }
    }

    private static func parse(_ body: [UInt8], call: String) throws(TiDBAnswerError) -> JSONValue {
        let value: JSONValue
        do { value = try JSONReader.parse(body) } catch {
            throw TiDBAnswerError(call: call, reason: "not JSON (\(error))")
        }
        guard case .object = value else { throw TiDBAnswerError(call: call, reason: "not a JSON object") }
        return value
    }

    private static func text(_ v: JSONValue?) -> String? {
        if case .string(let s)? = v { return s }
        return nil
    }

    /// RFC 3986 unreserved characters pass; every other byte is %XX.
    public static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}
