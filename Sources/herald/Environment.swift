// Shared helpers of the subcommands: settings from the environment (exit 2
// naming the key on a bad value) and one-line errors on stderr.

import ArgumentParser
import Foundation
import HeraldRuntime

enum CLI {
    /// Loads settings or exits 2 with a message naming the key.
    static func settings() throws -> Settings {
        do {
            return try Settings.load(
                from: ProcessInfo.processInfo.environment, hostname: ProcessInfo.processInfo.hostName,
                pid: ProcessInfo.processInfo.processIdentifier)
        } catch {
            fail(error.description, code: 2)
        }
    }

    /// Prints `herald: message` to stderr and exits.
    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("herald: \(message)\n".utf8))
        exit(code)
    }
}
