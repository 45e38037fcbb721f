// The values a Celery task argument can hold once it is JSON: what Python's
// json module round-trips. Objects keep their members in order, because Python
// dicts do and the encoder must write the bytes a Python producer would write.

/// One argument value of a Celery task (a JSON value with ordered objects and exact integers).
public enum CeleryValue: Sendable, Equatable {
    /// Python `None`, JSON `null`.
    case null
    /// Python `True`/`False`.
    case bool(Bool)
    /// A Python `int` that fits 64 bits.
    case int(Int64)
    /// A Python `float`, written as Python's `repr` writes it.
    case double(Double)
    /// A Python `str`.
    case string(String)
    /// A Python `list`.
    case array([CeleryValue])
    /// A Python `dict` with string keys, in insertion order.
    case object([CeleryMember])

    /// The members of an object as a dictionary (last one wins), or nil for other cases.
    public var objectValue: [String: CeleryValue]? {
        guard case .object(let members) = self else { return nil }
        var out: [String: CeleryValue] = [:]
        for member in members { out[member.key] = member.value }
        return out
    }

    /// The string payload, or nil for other cases.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

/// One `key: value` pair of a Celery object or keyword-argument list.
public struct CeleryMember: Sendable, Equatable {
    /// The key (a Python `str`).
    public var key: String
    /// The value under `key`.
    public var value: CeleryValue

    /// A pair.
    public init(_ key: String, _ value: CeleryValue) {
        self.key = key
        self.value = value
    }
}

extension CeleryValue: ExpressibleByNilLiteral {
    /// `nil` is `.null`.
    public init(nilLiteral: ()) { self = .null }
}

extension CeleryValue: ExpressibleByBooleanLiteral {
    /// `true`/`false` are `.bool`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension CeleryValue: ExpressibleByIntegerLiteral {
    /// Integer literals are `.int`.
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension CeleryValue: ExpressibleByFloatLiteral {
    /// Float literals are `.double`.
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension CeleryValue: ExpressibleByStringLiteral {
    /// String literals are `.string`.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension CeleryValue: ExpressibleByArrayLiteral {
    /// Array literals are `.array`.
    public init(arrayLiteral elements: CeleryValue...) { self = .array(elements) }
}

extension CeleryValue: ExpressibleByDictionaryLiteral {
    /// Dictionary literals are `.object`, in the order written.
    public init(dictionaryLiteral elements: (String, CeleryValue)...) {
        self = .object(elements.map { CeleryMember($0.0, $0.1) })
    }
}
