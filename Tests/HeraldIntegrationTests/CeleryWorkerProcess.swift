// A real Celery worker (Tests/Support/celery_worker.py) as a child process for
// the tests that check what Herald enqueues: started on a key prefix and queues,
// its run records read back, always stopped (SIGTERM, then SIGKILL).

import Foundation
import XCTest

final class CeleryWorkerProcess {
    let output: URL
    let log: URL
    private let dir: URL
    private let process = Process()
    private let logHandle: FileHandle

    /// Starts the worker; `keyPrefix` is Celery's global_keyprefix (with its colon).
    init(python: String, broker: String, keyPrefix: String, queues: [String]) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/celery_worker.py").path
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-celery-worker-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        output = dir.appendingPathComponent("ran.jsonl")
        log = dir.appendingPathComponent("worker.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        logHandle = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            script, "--broker", broker, "--key-prefix", keyPrefix, "--output", output.path,
            "--queues", queues.joined(separator: ","),
        ]
        process.standardOutput = logHandle
        process.standardError = logHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    /// Every record the worker wrote so far (complete lines only).
    func records() -> [[String: Any]] {
        guard let data = try? Data(contentsOf: output) else { return [] }
        return data.split(separator: 0x0A).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Warm shutdown, SIGKILL after 15 s; removes the scratch folder.
    func stop() {
        process.terminate()
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? logHandle.close()
        try? FileManager.default.removeItem(at: dir)
    }
}
