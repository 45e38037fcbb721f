// The settings of the two TiDB pool tasks, Dify's names and defaults: how many idle clusters to
// keep, the job switch, and the TiDB Cloud project, API, keys, region and spending limit. Read
// once per run and validated with the key named in every error; the private key is never shown
// (not in an error, not in the description).

import HeraldCore
import HeraldIO

/// A TiDB setting that cannot be used.
public struct TiDBSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting at fault.
    public let key: String
    /// The whole message, starting with the key.
    public let description: String

    init(key: String, reason: String) {
        self.key = key
        description = "\(key): \(reason)"
    }

    init(_ error: TaskSettingError) {
        key = error.key
        description = error.description
    }
}

/// Settings of `create_tidb_serverless_task` and `update_tidb_serverless_status_task`.
public struct TiDBSettings: Sendable, Equatable, CustomStringConvertible {
    /// `TIDB_SERVERLESS_NUMBER` (500): idle clusters (rows with active=false) to keep.
    public var serverlessNumber: Int
    /// `CREATE_TIDB_SERVICE_JOB_ENABLED` (false): without it the create task does nothing, as Dify's.
    public var createJobEnabled: Bool
    /// `TIDB_PROJECT_ID` (""): the `tidb.cloud/project` label of new clusters.
    public var projectID: String
    /// `TIDB_API_URL` (none): the TiDB Cloud serverless API, e.g. `https://serverless.tidbapi.com/v1beta1`.
    public var apiURL: String?
    /// `TIDB_IAM_API_URL` (none): read as Dify reads it; neither task calls it.
    public var iamAPIURL: String?
    /// `TIDB_PUBLIC_KEY` (none): the Digest user.
    public var publicKey: String?
    /// `TIDB_PRIVATE_KEY` (none): the Digest password. Never logged.
    public var privateKey: String?
    /// `TIDB_REGION` (`regions/aws-us-east-1`): the region of new clusters.
    public var region: String
    /// `TIDB_SPEND_LIMIT` (100): the monthly spending limit of new clusters.
    public var spendLimit: Int

    public static let defaultRegion = "regions/aws-us-east-1"

    /// Reads and checks every key of `environment` (Dify's names; `HERALD_<NAME>` overrides apply).
    public static func load(from environment: [String: String]) throws(TiDBSettingsError) -> TiDBSettings {
        let s = TaskSettings(environment)
        do {
            let url = s.string("TIDB_API_URL")
            if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                throw TiDBSettingsError(key: "TIDB_API_URL", reason: "not an http:// or https:// URL")
            }
            return TiDBSettings(
                serverlessNumber: try s.int("TIDB_SERVERLESS_NUMBER", default: 500, range: 1...100_000),
                createJobEnabled: try s.bool("CREATE_TIDB_SERVICE_JOB_ENABLED", default: false),
                projectID: s.string("TIDB_PROJECT_ID") ?? "",
                apiURL: url.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 },
                iamAPIURL: s.string("TIDB_IAM_API_URL"), publicKey: s.string("TIDB_PUBLIC_KEY"),
                privateKey: s.string("TIDB_PRIVATE_KEY"), region: s.string("TIDB_REGION") ?? defaultRegion,
                spendLimit: try s.int("TIDB_SPEND_LIMIT", default: 100, range: 0...Int(Int32.max)))
        } catch let e as TiDBSettingsError {
            throw e
        } catch let e as TaskSettingError {
            throw TiDBSettingsError(e)
        } catch {
            throw TiDBSettingsError(key: "TIDB_*", reason: "\(error)")
        }
    }

    /// The API URL and Digest credentials, or an error naming the first missing key.
    public func api() throws(TiDBSettingsError) -> (url: String, credentials: HTTPDigestCredentials) {
        guard let apiURL else { throw TiDBSettingsError(key: "TIDB_API_URL", reason: "not set") }
        guard let publicKey else { throw TiDBSettingsError(key: "TIDB_PUBLIC_KEY", reason: "not set") }
        guard let privateKey else { throw TiDBSettingsError(key: "TIDB_PRIVATE_KEY", reason: "not set") }
        return (apiURL, HTTPDigestCredentials(user: publicKey, password: privateKey))
    }

    /// Everything but the private key.
    public var description: String {
        "TiDBSettings(serverlessNumber: \(serverlessNumber), createJobEnabled: \(createJobEnabled), "
            + "projectID: \(projectID), apiURL: \(apiURL ?? "unset"), region: \(region), spendLimit: \(spendLimit), "
            + "publicKey: \(publicKey ?? "unset"), privateKey: \(privateKey == nil ? "unset" : "set"))"
    }
}
