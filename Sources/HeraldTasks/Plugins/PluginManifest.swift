// The marketplace manifest, fetched once per 15-minute window across instances and
// cached as Dify's per-tenant check reads it: one key per plugin,
// `[REDIS_KEY_PREFIX:]plugin_autoupgrade_check_task:cached_plugin_snapshot:{org}/{name}`,
// one hour, holding the JSON Dify's MarketplacePluginSnapshot dumps (org, name,
// latest_version, latest_package_identifier, latest_package_url, plugin_id). A marker
// `herald:plugin_manifest:<window>` on the app Redis says who fetches and when it is
// done, so other instances wait for it instead of fetching again. Blocking: run it off the loop.

import Glibc
import HeraldCore
import HeraldIO

/// Why the manifest could not be had.
public struct PluginManifestError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Fetches and caches the marketplace manifest.
public final class PluginManifestCache: @unchecked Sendable {
    public let app: RedisEndpoint
    public let keyNamespace: String
    public let manifestURL: String
    public let difyVersion: String
    public let instanceID: String
    /// Windows (their start, Unix s) whose manifest is known cached.
    private var done: Set<Int64> = []
    /// Fetches made by this instance (tests, status).
    public private(set) var fetches = 0
    /// Plugins of the last fetch that were skipped (a field missing or not a string).
    public private(set) var skipped = 0
    /// Runs the marketplace call (the daemon passes it through the marketplace's circuit breaker).
    let guarded: @Sendable (() throws -> [UInt8]) throws -> [UInt8]

    public static let snapshotPrefix = "plugin_autoupgrade_check_task:cached_plugin_snapshot:"
    public static let snapshotTTLSeconds = 3600

    public init(
        app: RedisEndpoint, redisKeyPrefix: String, marketplaceURL: String, difyVersion: String, instanceID: String,
        guarded: @escaping @Sendable (() throws -> [UInt8]) throws -> [UInt8] = { try $0() }
    ) {
        self.guarded = guarded
        self.app = app
        self.keyNamespace = redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":"
        var base = marketplaceURL
        while base.hasSuffix("/") { base.removeLast() }
        self.manifestURL = base + "/api/v1/dist/plugins/manifest.json"
        self.difyVersion = difyVersion
        self.instanceID = instanceID
    }

    /// Makes sure the manifest of `window` (its start, Unix s) is cached: fetched here, or by
    /// another instance (waited for, up to `wait`). Throws when neither happened.
    public func ensure(window: Int64, wait: Duration = .seconds(40)) throws {
        if done.contains(window) { return }
        let client: RedisClient
        do { client = try RedisClient.gated(endpoint: app) } catch {
            throw PluginManifestError(description: "app Redis: \(error)")
        }
        let marker = keyNamespace + "herald:plugin_manifest:\(window)"
        let deadline = ContinuousClock.now + wait
        while true {
            let claimed = try? client.command(["SET", marker, "fetching:\(instanceID)", "NX", "EX", "60"])
            if case .status? = claimed {
                do {
                    try fetch(into: client)
                } catch {
                    _ = try? client.command(["DEL", marker])
                    throw error
                }
                _ = try? client.command(["SET", marker, "done", "EX", "1800"])
                done.insert(window)
                return
            }
            if case .string(let v)? = try? client.command(["GET", marker]), String(decoding: v, as: UTF8.self) == "done"
            {
                done.insert(window)
                return
            }
            guard ContinuousClock.now < deadline else {
                throw PluginManifestError(description: "another instance is still fetching the manifest")
            }
            usleep(200_000)
        }
    }

    /// GET the manifest, SETEX one snapshot per plugin.
    func fetch(into client: RedisClient) throws {
        fetches += 1
        let url = manifestURL, version = difyVersion
        let body: [UInt8]
        do {
            body = try guarded {
                let r: (status: Int, body: [UInt8])
                do {
                    r = try HTTPClient.get(url, headers: ["X-Dify-Version: \(version)"], timeout: .seconds(30))
                } catch {
                    throw PluginManifestError(description: "GET \(url): \(error)")
                }
                guard r.status == 200 else { throw PluginManifestError(description: "GET \(url): HTTP \(r.status)") }
                return r.body
            }
        } catch { throw PluginManifestError(description: "\(error)") }
        let root: JSONValue
        do { root = try JSONReader.parse(body, maxDepth: 16) } catch {
            throw PluginManifestError(description: "the manifest is not JSON: \(error)")
        }
        guard case .array(let plugins)? = root["plugins"] else {
            throw PluginManifestError(description: "the manifest has no \"plugins\" list")
        }
        var commands: [[[UInt8]]] = []
        var skipped = 0
        for p in plugins {
            guard let snapshot = Self.snapshot(p) else {
                skipped += 1
                continue
            }
            commands.append([
                Array("SETEX".utf8), Array((keyNamespace + Self.snapshotPrefix + snapshot.id).utf8),
                Array(String(Self.snapshotTTLSeconds).utf8), Array(snapshot.json.utf8),
            ])
        }
        self.skipped = skipped
        for chunk in stride(from: 0, to: commands.count, by: 1000) {
            do { _ = try client.pipeline(Array(commands[chunk..<min(chunk + 1000, commands.count)])) } catch {
                throw PluginManifestError(description: "caching the snapshots: \(error)")
            }
        }
    }

    /// Dify's snapshot JSON of one manifest entry (pydantic's compact dump, computed `plugin_id` last).
    static func snapshot(_ p: JSONValue) -> (id: String, json: String)? {
        let fields = ["org", "name", "latest_version", "latest_package_identifier", "latest_package_url"]
        var values: [String] = []
        for f in fields {
            guard case .string(let v)? = p[f] else { return nil }
            values.append(v)
        }
        let id = values[0] + "/" + values[1]
        var json = "{"
        for (f, v) in zip(fields, values) {
            json += "\"\(f)\":\(quote(v)),"
        }
        json += "\"plugin_id\":\(quote(id))}"
        return (id, json)
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
