// The small value types the due-time engine is built from: the caller's local instant,
// a min-heap of due times keyed by any hashable row id,
// an insertion-ordered queue without duplicates, and a deterministic exponential retry.
// Pure Swift, no Foundation, so the engine stays a plain value.

/// An instant on the caller's local clock, in microseconds. Any clock that advances steadily
/// will do (a monotonic clock is best): the engine relates it to the database clock through an
/// offset it measures, and never compares it with a due time directly.
public struct DueTimeInstant: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds on the caller's clock.
    public var micros: Int64

    /// The instant `micros` µs into the caller's clock.
    public init(micros: Int64) { self.micros = micros }

    /// This instant moved by `micros` µs.
    public func advanced(byMicros micros: Int64) -> DueTimeInstant { DueTimeInstant(micros: self.micros + micros) }

    public static func < (a: DueTimeInstant, b: DueTimeInstant) -> Bool { a.micros < b.micros }

    public var description: String { "\(micros)µs" }
}

/// Ids ordered by a due time (µs), with lazy deletion: arming again or disarming is O(log n),
/// and ties keep the order of arming.
struct DueTimeHeap<ID: Hashable & Sendable>: Sendable {
    private struct Entry: Sendable {
        var due: Int64
        var seq: UInt64
        var id: ID
    }

    private var heap: [Entry] = []
    private var current: [ID: (due: Int64, seq: UInt64)] = [:]
    private var nextSeq: UInt64 = 0

    /// Live entries.
    var count: Int { current.count }
    var isEmpty: Bool { current.isEmpty }

    /// The due time `id` is armed for, if any.
    func due(of id: ID) -> Int64? { current[id]?.due }

    /// Arms `id` for `due`, replacing an earlier arming.
    mutating func arm(_ id: ID, at due: Int64) {
        if current[id]?.due == due { return }
        nextSeq &+= 1
        current[id] = (due, nextSeq)
        push(Entry(due: due, seq: nextSeq, id: id))
        compactIfStale()
    }

    /// Disarms `id`.
    mutating func disarm(_ id: ID) {
        guard current.removeValue(forKey: id) != nil else { return }
        compactIfStale()
    }

    /// The earliest live due time.
    mutating func earliest() -> Int64? {
        dropStale()
        return heap.first?.due
    }

    /// Removes and returns the live entries due at or before `time`, earliest first.
    mutating func popDue(upTo time: Int64) -> [(id: ID, due: Int64)] {
        var out: [(id: ID, due: Int64)] = []
        while true {
            dropStale()
            guard let top = heap.first, top.due <= time else { break }
            pop()
            current.removeValue(forKey: top.id)
            out.append((top.id, top.due))
        }
        return out
    }

    mutating func removeAll() {
        heap.removeAll()
        current.removeAll()
    }

    private mutating func dropStale() {
        while let top = heap.first, current[top.id]?.seq != top.seq { pop() }
    }

    private mutating func compactIfStale() {
        guard heap.count > 1024, heap.count > 2 * current.count else { return }
        heap = current.map { Entry(due: $0.value.due, seq: $0.value.seq, id: $0.key) }
        var i = heap.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    private static func less(_ a: Entry, _ b: Entry) -> Bool { a.due != b.due ? a.due < b.due : a.seq < b.seq }

    private mutating func push(_ e: Entry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n, Self.less(heap[l], heap[m]) { m = l }
            if r < n, Self.less(heap[r], heap[m]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}

/// Ids in the order they were first added, each at most once; removal is O(1) (the slot is
/// skipped when its turn comes).
struct DueTimeQueue<ID: Hashable & Sendable>: Sendable {
    private var items: [ID] = []
    private var head = 0
    private var members: Set<ID> = []

    var count: Int { members.count }
    var isEmpty: Bool { members.isEmpty }
    func contains(_ id: ID) -> Bool { members.contains(id) }

    /// Adds `id` at the back unless it is already queued; true when added.
    @discardableResult
    mutating func append(_ id: ID) -> Bool {
        guard members.insert(id).inserted else { return false }
        items.append(id)
        return true
    }

    /// Puts `ids` at the front (those not already queued), in their order.
    mutating func prepend(_ ids: [ID]) {
        let fresh = ids.filter { members.insert($0).inserted }
        guard !fresh.isEmpty else { return }
        items = fresh + items[head...]
        head = 0
    }

    mutating func remove(_ id: ID) { members.remove(id) }

    /// Removes and returns up to `n` ids from the front.
    mutating func popFirst(_ n: Int) -> [ID] {
        var out: [ID] = []
        while out.count < n, head < items.count {
            let id = items[head]
            head += 1
            if members.remove(id) != nil { out.append(id) }
        }
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024, head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return out
    }

    mutating func removeAll() {
        items.removeAll()
        head = 0
        members.removeAll()
    }
}

/// Exponential delays without jitter (the engine stays deterministic): `base`, `2 base`,
/// `4 base`, ... up to `cap`, back to `base` after a success.
struct DueTimeRetry: Sendable {
    /// Failures since the last success.
    private(set) var failures = 0

    /// Records a failure and returns how long to wait (µs).
    mutating func fail(base: Int64, cap: Int64) -> Int64 {
        var delay = max(1, base)
        for _ in 0..<failures where delay < cap { delay = delay > cap / 2 ? cap : delay * 2 }
        failures += 1
        return min(delay, max(1, cap))
    }

    mutating func reset() { failures = 0 }
}
