// The LISTEN connection, on the loop and never blocking it: PQconnectStart and
// PQconnectPoll driven by socket events, LISTEN sent with PQsendQuery, NOTIFY
// drained after every read and every result (libpq buffers notifications that
// arrive during a query; docs/development.md), a periodic health query with a deadline,
// and reconnect with backoff and re-LISTEN.

import CLibevent
import CLibpq
import Glibc
import HeraldCore

/// A libpq connection that LISTENs on channels. Loop-confined.
public final class PostgresListener: @unchecked Sendable {
    public enum State: String, Sendable { case disconnected, connecting, ready }

    public let name: String
    public private(set) var state: State = .disconnected
    public var onStateChange: ((State, String?) -> Void)?
    public var onNotify: ((String, [UInt8]) -> Void)?

    private let loop: EventLoop
    private let connInfo: PostgresConnInfo
    private let channels: [String]
    private let connectTimeout: Duration
    private let healthInterval: Duration
    private let queryTimeout: Duration
    private var backoff: Backoff
    private var conn: OpaquePointer?
    private var watcher: FDWatcher?
    private var watchedFD: Int32 = -1
    private var stopped = true
    private var generation = 0
    private var inFlight = 0
    private var inFlightSince: UInt64 = 0
    private var listening = false
    private lazy var reconnectTimer = LoopTimer(loop: loop) { [unowned self] in self.connect() }
    private lazy var deadline = LoopTimer(loop: loop) { [unowned self] in
        self.fail("connect timed out after \(self.connectTimeout)")
    }
    private lazy var healthTimer = LoopTimer(loop: loop) { [unowned self] in self.healthCheck() }

    public init(
        name: String = "postgres_listener", loop: EventLoop, connInfo: PostgresConnInfo, channels: [String],
        connectTimeout: Duration = .seconds(5), healthInterval: Duration = .seconds(10),
        queryTimeout: Duration = .seconds(5), backoff: Backoff = Backoff()
    ) {
        self.name = name
        self.loop = loop
        self.connInfo = connInfo
        self.channels = channels
        self.connectTimeout = connectTimeout
        self.healthInterval = healthInterval
        self.queryTimeout = queryTimeout
        self.backoff = backoff
    }

    deinit { closeConnection() }

    public func start() {
        loop.assertInLoop()
        guard stopped else { return }
        stopped = false
        connect()
    }

    public func stop() {
        loop.assertInLoop()
        stopped = true
        reconnectTimer.cancel()
        deadline.cancel()
        healthTimer.cancel()
        closeConnection()
        setState(.disconnected, reason: "stopped")
    }

    /// Drops the connection; it reconnects with backoff.
    public func fail(_ reason: String) {
        loop.assertInLoop()
        deadline.cancel()
        healthTimer.cancel()
        closeConnection()
        setState(.disconnected, reason: reason)
        if !stopped { reconnectTimer.schedule(after: backoff.next()) }
    }

    /// The server-side process id of the listening session (for tests and diagnostics).
    public var backendPID: Int32? {
        guard let c = conn, state == .ready else { return nil }
        return PQbackendPID(c)
    }

    private func closeConnection() {
        watcher = nil
        watchedFD = -1
        if let c = conn {
            conn = nil
            PQfinish(c)
        }
        inFlight = 0
        listening = false
    }

    // MARK: Connecting

    private func connect() {
        guard !stopped, conn == nil else { return }
        generation += 1
        let gen = generation
        setState(.connecting, reason: nil)
        deadline.schedule(after: connectTimeout)
        if let host = connInfo.hostNeedingResolution {
            Resolver.resolve(host, on: loop) { [unowned self] result in
                guard gen == self.generation, !self.stopped else { return }
                switch result {
                case .success(let ip):
                    var info = self.connInfo
                    info["hostaddr"] = ip
                    self.begin(info)
                case .failure(let e): self.fail(e.description)
                }
            }
        } else {
            begin(connInfo)
        }
    }

    private func begin(_ info: PostgresConnInfo) {
        guard let c = info.withArrays({ PQconnectStartParams($0, $1, 0) }) else {
            fail("PQconnectStartParams: out of memory")
            return
        }
        conn = c
        if PQstatus(c) == CONNECTION_BAD {
            fail("PQconnectStart: \(postgresError(c))")
            return
        }
        PQsetNoticeProcessor(c, { _, _ in }, nil)  // server notices are not ours to print
        watch(for: EV_WRITE, persist: false) { [unowned self] _ in self.poll() }
    }

    private func watch(for events: Int32, persist: Bool, _ handler: @escaping (Int16) -> Void) {
        guard let c = conn else { return }
        let fd = PQsocket(c)
        guard fd >= 0 else {
            fail("PQsocket: \(postgresError(c))")
            return
        }
        watcher = FDWatcher(loop: loop, fd: fd, events: events, persist: persist, handler: handler)
        watchedFD = fd
        watcher?.arm()
    }

    private func poll() {
        guard let c = conn else { return }
        switch PQconnectPoll(c) {
        case PGRES_POLLING_READING: watch(for: EV_READ, persist: false) { [unowned self] _ in self.poll() }
        case PGRES_POLLING_WRITING: watch(for: EV_WRITE, persist: false) { [unowned self] _ in self.poll() }
        case PGRES_POLLING_OK: established()
        default: fail("PQconnectPoll: \(postgresError(c))")
        }
    }

    private func established() {
        guard let c = conn else { return }
        deadline.cancel()
        guard PQsetnonblocking(c, 1) == 0 else {
            fail("PQsetnonblocking: \(postgresError(c))")
            return
        }
        watch(for: EV_READ, persist: true) { [unowned self] _ in self.readable() }
        let sql = channels.map { "LISTEN " + quoteIdentifier($0) }.joined(separator: "; ")
        sendQuery(sql)
    }

    private func sendQuery(_ sql: String) {
        guard let c = conn else { return }
        guard PQsendQuery(c, sql) == 1 else {
            fail("PQsendQuery: \(postgresError(c))")
            return
        }
        inFlight += 1
        inFlightSince = MonotonicNow.nanoseconds
        flush()
    }

    private func flush() {
        guard let c = conn else { return }
        let r = PQflush(c)
        if r < 0 { fail("PQflush: \(postgresError(c))") }
        if r == 1 {
            // Output is queued: wait for writability once, then flush again.
            let w = FDWatcher(loop: loop, fd: watchedFD, events: EV_WRITE, persist: false) { [unowned self] _ in
                self.flush()
            }
            w.arm()
            pendingFlush = w
        } else {
            pendingFlush = nil
        }
    }
    private var pendingFlush: FDWatcher?

    // MARK: Reading

    private func readable() {
        guard let c = conn else { return }
        guard PQconsumeInput(c) == 1 else {
            fail("connection lost: \(postgresError(c))")
            return
        }
        while inFlight > 0, PQisBusy(c) == 0 {
            guard let r = PQgetResult(c) else {
                inFlight -= 1
                queryFinished()
                continue
            }
            let status = PQresultStatus(r)
            if status == PGRES_FATAL_ERROR {
                let msg = String(cString: PQresultErrorMessage(r)).trimmingTrailingNewlines
                PQclear(r)
                fail("query failed: \(msg)")
                return
            }
            PQclear(r)
        }
        drainNotifications()
        if PQstatus(c) == CONNECTION_BAD { fail("connection lost: \(postgresError(c))") }
    }

    private func queryFinished() {
        guard !listening else { return }
        listening = true
        backoff.reset()
        setState(.ready, reason: nil)
        healthTimer.scheduleRepeating(every: healthInterval)
    }

    private func drainNotifications() {
        guard let c = conn else { return }
        while let n = PQnotifies(c) {
            let channel = String(cString: n.pointee.relname)
            let payload: [UInt8]
            if let extra = n.pointee.extra {
                payload = Array(UnsafeRawBufferPointer(start: extra, count: strlen(extra)))
            } else {
                payload = []
            }
            PQfreemem(n)
            onNotify?(channel, payload)
            if conn == nil { return }  // the handler stopped us
        }
    }

    private func healthCheck() {
        guard conn != nil, listening else { return }
        if inFlight > 0 {
            let age = MonotonicNow.nanoseconds &- inFlightSince
            if age > UInt64(max(0, queryTimeout.nanosecondsClamped)) {
                fail("health query timed out after \(queryTimeout)")
            }
            return
        }
        sendQuery("SELECT 1")
    }

    private func setState(_ s: State, reason: String?) {
        let old = state
        state = s
        // The outcome of a connect, told to the server's shared gate and breaker (ConnectGate.swift).
        if s == .ready && old != .ready {
            ConnectGates.gate(dependency: "postgresql", target: connInfo.redacted).record(success: true)
        } else if old == .connecting && s == .disconnected && !stopped {
            ConnectGates.gate(dependency: "postgresql", target: connInfo.redacted).record(
                success: false, failure: reason)
        }
        if old != s { onStateChange?(s, reason) }
    }
}

/// Quotes an SQL identifier ("name" with doubled quotes).
public func quoteIdentifier(_ s: String) -> String {
    "\"" + s.replacingAll("\"", with: "\"\"") + "\""
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
