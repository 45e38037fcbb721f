// The due-time logic of timed rows (workflow plans today) as a pure state machine:
// which rows to arm, when to wake, what to re-read, claim, push and hand back. It does
// no I/O and reads no clock: the caller passes its time with every input and carries
// out the actions returned, so every rule is tested with a manual clock and no server.

/// Arms rows that fall due within a horizon, claims them a lead before their due time within a
/// per-second budget, and releases each claimed fire at its due instant, in database time.
///
/// The caller (the loop-side driver) feeds it inputs and carries out the returned actions in
/// order; at most one read, one window load and `maxClaimsInFlight` claims are ever asked for at
/// once, and each must be answered by exactly one result input. Due times are in database time
/// (Unix µs by the database clock); `now` is always the caller's local ``DueTimeInstant``. The
/// offset between the two clocks is measured from every read and window load.
public struct DueTimeEngine<RowID: Hashable & Sendable>: Sendable {
    /// The caller's local time.
    public typealias Instant = DueTimeInstant

    /// Tunables.
    public struct Options: Sendable {
        /// Rows due within this many µs of the database clock are armed (`HERALD_SCHEDULE_HORIZON`).
        public var horizonMicros: Int64 = 300_000_000
        /// Rows are claimed this many µs before their due time (`HERALD_SCHEDULE_LEAD`).
        public var leadMicros: Int64 = 2_000_000
        /// Rows claimed per second at most, by the local clock's seconds (0: unlimited).
        public var claimBudgetPerSecond = 0
        /// At most this many rows are armed; the rest wait for a later window load.
        public var armedCap = 200_000
        /// The arming window is reloaded this often (µs).
        public var windowReloadIntervalMicros: Int64 = 60_000_000
        /// Rows per claim.
        public var claimBatchSize = 2_000
        /// Claims in flight at once while claims succeed (one while they fail).
        public var maxClaimsInFlight = 2
        /// Rows per re-read.
        public var readBatchSize = 5_000
        /// A row a claim did not take (held by another instance, or not yet due by the database
        /// clock) is re-read this many µs later.
        public var rereadDelayMicros: Int64 = 5_000
        /// The first wait after a failed claim, read or window load (µs); it doubles per failure.
        public var backoffBaseMicros: Int64 = 500_000
        /// The longest wait after failures (µs).
        public var backoffCapMicros: Int64 = 10_000_000
        /// On ``DueTimeEngine/stop(now:)``, claimed fires due within this many µs are still pushed
        /// at their instant and later ones handed back (nil: the lead).
        public var drainWindowMicros: Int64?

        /// The defaults of the workflow schedules.
        public init() {}
    }

    /// Why rows are claimed (the metrics' `via`).
    public enum Cause: String, Sendable, Hashable {
        /// Armed rows whose time came.
        case timer
        /// Rows a re-read found due, after an event.
        case event
    }

    /// The claimed fires of one claim that share a due instant.
    public struct Release: Sendable, Hashable {
        /// The caller's id of the claim.
        public var claim: Int64
        /// The fires' due instant, database time (µs).
        public var dueAtMicros: Int64
        /// The rows firing.
        public var ids: [RowID]

        public init(claim: Int64, dueAtMicros: Int64, ids: [RowID]) {
            self.claim = claim
            self.dueAtMicros = dueAtMicros
            self.ids = ids
        }
    }

    /// What the caller must do, in the order given.
    public enum Action: Sendable, Equatable {
        /// Arm the one timer for `at` (local), replacing any earlier arming; call ``tick(now:)`` then.
        case armTimer(at: DueTimeInstant)
        /// Cancel the timer.
        case cancelTimer
        /// Read these rows' due times and answer ``rowsRead(_:asked:databaseNowMicros:measuredAt:now:)``
        /// (or ``readFailed(now:)``). One read is in flight at a time.
        case read([RowID])
        /// Load the rows due until `untilMicros` (database time), earliest first, at most `limit`,
        /// and answer ``windowLoaded(_:databaseNowMicros:measuredAt:now:)`` (or ``windowLoadFailed(now:)``).
        case loadWindow(untilMicros: Int64, limit: Int)
        /// Claim these rows with the lead and answer ``claimSucceeded(_:claim:fires:next:settled:now:)``
        /// or ``claimFailed(_:now:)``.
        case claim([RowID], cause: Cause)
        /// Push these fires now: their instant has come (one pipeline).
        case push([Release])
        /// A claim failed; claims pause this many µs (for logs and metrics: the timer covers it).
        case retryAfter(micros: Int64)
        /// Draining: release these claims in the database so that another instance fires them.
        case handBack([Release])
        /// Drained: nothing is held or in flight any more.
        case stopped
    }

    /// The engine's phase.
    public enum State: Sendable, Hashable {
        case idle, running, draining, stopped
    }

    /// The tunables in force.
    public let options: Options
    /// The phase.
    public internal(set) var state: State = .idle
    /// Database clock minus local clock (µs), from the latest measurement.
    public internal(set) var offsetMicros: Int64 = 0
    /// When the caller's timer is armed for (local), if it is.
    public internal(set) var timerDeadline: DueTimeInstant?
    /// Window loads completed.
    public internal(set) var windowLoads = 0
    /// Claims asked for and not yet answered.
    public internal(set) var claimsInFlight = 0
    /// Claimed fires waiting for their instant.
    public internal(set) var heldFireCount = 0

    var armed = DueTimeHeap<RowID>()
    var pendingClaims = DueTimeQueue<RowID>()
    /// Pending claims found due by a re-read (the others are the timer's).
    var eventClaims: Set<RowID> = []
    var claiming: Set<RowID> = []
    /// Rows found due again while a claim of theirs was in flight: re-read once it is answered.
    var recheck: Set<RowID> = []
    var claimRetry = DueTimeRetry()
    var claimRetryAt: DueTimeInstant?
    var budgetSecond = Int64.min
    var budgetUsed = 0
    var pendingReads = DueTimeQueue<RowID>()
    /// Rows to re-read at a local instant (µs).
    var delayedReads = DueTimeHeap<RowID>()
    var reading: [RowID]?
    var readRetry = DueTimeRetry()
    var windowInFlight = false
    var windowAgain = false
    var windowStartedAt: DueTimeInstant?
    var nextWindowAt: DueTimeInstant?
    var windowRetry = DueTimeRetry()
    /// Claimed fires by due instant (database µs); `heldTimes` orders the instants.
    var held: [Int64: [Release]] = [:]
    var heldTimes = DueTimeHeap<Int64>()
    var drainDeadlineMicros = Int64.max

    /// An idle engine; ``start(now:)`` begins.
    public init(options: Options = Options()) { self.options = options }

    /// Rows armed now.
    public var armedCount: Int { armed.count }
    /// The database due time `id` is armed for, if it is.
    public func armedDue(of id: RowID) -> Int64? { armed.due(of: id) }
    /// Rows waiting to be claimed.
    public var pendingClaimCount: Int { pendingClaims.count }
    /// Rows waiting to be read (now or after a delay).
    public var pendingReadCount: Int { pendingReads.count + delayedReads.count }
    /// True while a read is asked for and not answered.
    public var isReadInFlight: Bool { reading != nil }
    /// True while a window load is asked for and not answered.
    public var isWindowLoadInFlight: Bool { windowInFlight }
    /// Claim failures since the last success.
    public var claimFailures: Int { claimRetry.failures }
    /// The local start of the latest window load.
    public var lastWindowLoadStart: DueTimeInstant? { windowStartedAt }
    /// The database clock now, by the current offset.
    public func databaseNow(_ now: DueTimeInstant) -> Int64 { now.micros + offsetMicros }

    // MARK: Inputs
    //
    // Each input is pre-specialized for PlanID (`@_specialize`): a driver in another module would
    // otherwise run the generic code, about three times slower on a burst of 200,000 rows.

    /// Starts: loads the first window.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func start(now: DueTimeInstant) -> [Action] {
        guard state == .idle else { return [] }
        state = .running
        nextWindowAt = now
        return advance(now)
    }

    /// The caller's timer fired.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func tick(now: DueTimeInstant) -> [Action] {
        timerDeadline = nil
        return advance(now)
    }

    /// An event for `id` (the row may have changed): it is re-read. Hints are coalesced: one read
    /// is in flight at a time and ids arriving meanwhile are merged into the next.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func hint(_ id: RowID, now: DueTimeInstant) -> [Action] { hints([id], now: now) }

    /// Events for several rows, as ``hint(_:now:)``.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func hints(_ ids: [RowID], now: DueTimeInstant) -> [Action] {
        guard state == .running else { return [] }
        for id in ids {
            delayedReads.disarm(id)
            pendingReads.append(id)
        }
        return advance(now)
    }

    /// Loads the arming window now (or once the load in flight is answered).
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func reloadWindow(now: DueTimeInstant) -> [Action] {
        guard state == .running else { return [] }
        if windowInFlight { windowAgain = true } else { nextWindowAt = now }
        return advance(now)
    }

    /// The answer to `.read`: the rows found with their due times (database µs). Rows read or
    /// `asked` (ids added by the caller, such as the plans of a changed trigger) and not found are
    /// disarmed; rows due within the lead are claimed (``Cause/event``); the others are armed.
    /// `measuredAt` is the local instant at which the database clock read `databaseNowMicros`
    /// (best: the middle of that round trip; default `now`).
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func rowsRead(
        _ rows: [(id: RowID, dueAtMicros: Int64)], asked: [RowID] = [], databaseNowMicros: Int64,
        measuredAt: DueTimeInstant? = nil, now: DueTimeInstant
    ) -> [Action] {
        let read = reading ?? []
        reading = nil
        guard state == .running else { return advance(now) }
        measure(databaseNowMicros, at: measuredAt ?? now)
        readRetry.reset()
        var missing = Set(read).union(asked)
        for row in rows { missing.remove(row.id) }
        for id in missing {
            armed.disarm(id)
            pendingClaims.remove(id)
            eventClaims.remove(id)
        }
        for row in rows { place(row.id, due: row.dueAtMicros, cause: .event, now: now) }
        return advance(now)
    }

    /// The read in flight failed: its rows are read again after a backoff.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func readFailed(now: DueTimeInstant) -> [Action] {
        let read = reading ?? []
        reading = nil
        guard state == .running else { return advance(now) }
        let at = now.micros + readRetry.fail(base: options.backoffBaseMicros, cap: options.backoffCapMicros)
        for id in read where !pendingReads.contains(id) { delayedReads.arm(id, at: at) }
        return advance(now)
    }

    /// The answer to `.loadWindow`: rows due until then, earliest first. Rows due within the lead are
    /// claimed, the others armed up to the cap; armed rows absent from the window stay armed.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func windowLoaded(
        _ rows: [(id: RowID, dueAtMicros: Int64)], databaseNowMicros: Int64, measuredAt: DueTimeInstant? = nil,
        now: DueTimeInstant
    ) -> [Action] {
        windowInFlight = false
        guard state == .running else { return advance(now) }
        measure(databaseNowMicros, at: measuredAt ?? now)
        windowLoads += 1
        windowRetry.reset()
        for row in rows { place(row.id, due: row.dueAtMicros, cause: .timer, now: now) }
        let next = (windowStartedAt ?? now).advanced(byMicros: options.windowReloadIntervalMicros)
        nextWindowAt = windowAgain ? now : max(now, next)
        windowAgain = false
        return advance(now)
    }

    /// The window load in flight failed: tried again after a backoff (at most the reload interval).
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func windowLoadFailed(now: DueTimeInstant) -> [Action] {
        windowInFlight = false
        guard state == .running else { return advance(now) }
        let delay = windowRetry.fail(base: options.backoffBaseMicros, cap: options.backoffCapMicros)
        nextWindowAt = now.advanced(byMicros: windowAgain ? 0 : min(delay, options.windowReloadIntervalMicros))
        windowAgain = false
        return advance(now)
    }

    /// The answer to `.claim(ids)`: `fires` were claimed under `claim` (each released at its due
    /// instant, or at once when already due), `next` are the claimed rows' new due times (armed
    /// again), `settled` rows need nothing more (quarantined). Every other asked row was not taken
    /// (held by another instance, or not due by the database clock) and is re-read shortly, as
    /// ``rowHeldElsewhere(_:now:)``. A success ends the claim backoff.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func claimSucceeded(
        _ ids: [RowID], claim: Int64, fires: [(id: RowID, dueAtMicros: Int64)],
        next: [(id: RowID, dueAtMicros: Int64)], settled: [RowID] = [], now: DueTimeInstant
    ) -> [Action] {
        claimAnswered(ids)
        var actions: [Action] = []
        hold(fires, claim: claim, handBack: &actions)
        guard state == .running else { return actions + advance(now) }
        claimRetry.reset()
        claimRetryAt = nil
        var untaken = Set(ids).subtracting(settled)
        for row in next {
            untaken.remove(row.id)
            place(row.id, due: row.dueAtMicros, cause: .timer, now: now)
        }
        for id in untaken { rereadLater(id, now: now) }
        for id in ids where recheck.remove(id) != nil {
            delayedReads.disarm(id)
            pendingReads.append(id)
        }
        return actions + advance(now)
    }

    /// The claim of `ids` failed (nothing was claimed): they are claimed again after a backoff that
    /// doubles per failure up to the cap, one claim at a time until one succeeds.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func claimFailed(_ ids: [RowID], now: DueTimeInstant) -> [Action] {
        claimAnswered(ids)
        guard state == .running else { return advance(now) }
        let delay = claimRetry.fail(base: options.backoffBaseMicros, cap: options.backoffCapMicros)
        claimRetryAt = now.advanced(byMicros: delay)
        let retry = ids.filter { armed.due(of: $0) == nil }  // armed meanwhile: a read saw it move
        pendingClaims.prepend(retry)
        for id in ids { recheck.remove(id) }
        return [.retryAfter(micros: delay)] + advance(now)
    }

    /// A claim skipped `id`, locked by another instance: it is re-read shortly.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func rowHeldElsewhere(_ id: RowID, now: DueTimeInstant) -> [Action] {
        guard state == .running else { return [] }
        rereadLater(id, now: now)
        return advance(now)
    }

    /// Drains: stops arming, reading and claiming; claimed fires due within the drain window (the
    /// lead) are still pushed at their instant, later ones are handed back, as are those of claims
    /// answered meanwhile; `.stopped` comes once nothing is held or in flight.
    @_specialize(exported:true,where RowID == PlanID)
    public mutating func stop(now: DueTimeInstant) -> [Action] {
        switch state {
        case .idle:
            state = .stopped
            return [.stopped]
        case .draining, .stopped:
            return []
        case .running:
            break
        }
        state = .draining
        drainDeadlineMicros = databaseNow(now) + (options.drainWindowMicros ?? options.leadMicros)
        armed.removeAll()
        pendingClaims.removeAll()
        eventClaims.removeAll()
        recheck.removeAll()
        pendingReads.removeAll()
        delayedReads.removeAll()
        claimRetryAt = nil
        nextWindowAt = nil
        windowAgain = false
        var later: [Release] = []
        for (t, releases) in held where t > drainDeadlineMicros {
            later += releases
            held[t] = nil
            heldTimes.disarm(t)
        }
        heldFireCount -= later.reduce(0) { $0 + $1.ids.count }
        later.sort { ($0.dueAtMicros, $0.claim) < ($1.dueAtMicros, $1.claim) }
        return (later.isEmpty ? [] : [.handBack(later)]) + advance(now)
    }
}
