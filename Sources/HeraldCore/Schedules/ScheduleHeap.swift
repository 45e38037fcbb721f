// The timer set of armed plans: a binary min-heap of (due time, plan) with
// lazy deletion, so re-arming or disarming a plan is O(log n) and the loop
// needs only one libevent timer, for the earliest entry.

/// Armed plans ordered by due time (Unix microseconds). Not thread-safe.
public struct ScheduleHeap: Sendable {
    struct Entry: Sendable {
        var due: Int64
        var plan: PlanID
    }

    private var heap: [Entry] = []
    private var current: [PlanID: Int64] = [:]

    public init() {}

    /// Plans armed (live entries).
    public var count: Int { current.count }

    /// The due time a plan is armed for, if any.
    public func due(of plan: PlanID) -> Int64? { current[plan] }

    /// Arms `plan` for `due`, replacing an earlier arming.
    public mutating func arm(_ plan: PlanID, at due: Int64) {
        if current[plan] == due { return }
        current[plan] = due
        push(Entry(due: due, plan: plan))
        compactIfStale()
    }

    /// Disarms `plan`.
    public mutating func disarm(_ plan: PlanID) {
        current.removeValue(forKey: plan)
        compactIfStale()
    }

    /// The earliest live due time.
    public mutating func earliest() -> Int64? {
        dropStale()
        return heap.first?.due
    }

    /// Removes and returns every live entry due at or before `time`, at most `limit`.
    public mutating func popDue(upTo time: Int64, limit: Int = .max) -> [(plan: PlanID, due: Int64)] {
        var out: [(PlanID, Int64)] = []
        while out.count < limit {
            dropStale()
            guard let top = heap.first, top.due <= time else { break }
            pop()
            current.removeValue(forKey: top.plan)
            out.append((top.plan, top.due))
        }
        return out
    }

    /// Removes every entry.
    public mutating func removeAll() {
        heap.removeAll()
        current.removeAll()
    }

    private mutating func dropStale() {
        while let top = heap.first, current[top.plan] != top.due { pop() }
    }

    private mutating func compactIfStale() {
        // Lazy deletion leaves dead entries behind; rebuild when they dominate.
        guard heap.count > 1024, heap.count > 2 * current.count else { return }
        heap = current.map { Entry(due: $0.value, plan: $0.key) }
        var i = heap.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.due != b.due ? a.due < b.due : a.plan < b.plan
    }

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
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < n, Self.less(heap[l], heap[m]) { m = l }
            if r < n, Self.less(heap[r], heap[m]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}
