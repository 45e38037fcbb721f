// Typed access to one JSON object of a topology file, remembering which fields
// were read so that a misspelt field is reported instead of silently ignored, and
// building the path (`tasks[3] (clean_messages).lock.ttl_seconds`) that every
// shape error names. Used only by TopologyLoader.

/// One JSON object being read, with its path for error messages.
struct TopologyFields {
    /// Fields allowed on every object and ignored: free text for humans.
    static let commentField = "comment"

    let path: String
    private let members: [String: JSONValue]
    private var read: Set<String> = [commentField]

    /// Wraps `value`, which must be an object.
    init(_ value: JSONValue, path: String) throws(TopologyError) {
        guard case .object(let members) = value else { throw .wrongType(path: path, expected: "an object") }
        self.members = members
        self.path = path
    }

    /// The path of `field` inside this object.
    func path(of field: String) -> String { path.isEmpty ? field : "\(path).\(field)" }

    /// Whether `field` is present (and not null).
    func has(_ field: String) -> Bool {
        if let value = members[field], value != .null { return true }
        return false
    }

    /// The raw value of `field`, marking it read; nil when absent or null.
    mutating func value(_ field: String) -> JSONValue? {
        read.insert(field)
        guard let value = members[field], value != .null else { return nil }
        return value
    }

    /// A required field of any type.
    mutating func required(_ field: String) throws(TopologyError) -> JSONValue {
        guard let value = value(field) else { throw .missingField(path: path, field: field) }
        return value
    }

    /// A string field; nil when absent.
    mutating func string(_ field: String) throws(TopologyError) -> String? {
        guard let value = value(field) else { return nil }
        guard case .string(let text) = value else { throw .wrongType(path: path(of: field), expected: "a string") }
        return text
    }

    /// A required string field.
    mutating func requiredString(_ field: String) throws(TopologyError) -> String {
        guard let text = try string(field) else { throw .missingField(path: path, field: field) }
        return text
    }

    /// A boolean field; `defaultValue` when absent.
    mutating func bool(_ field: String, default defaultValue: Bool) throws(TopologyError) -> Bool {
        guard let value = value(field) else { return defaultValue }
        guard case .bool(let flag) = value else { throw .wrongType(path: path(of: field), expected: "true or false") }
        return flag
    }

    /// A number field; nil when absent.
    mutating func number(_ field: String) throws(TopologyError) -> Double? {
        guard let value = value(field) else { return nil }
        guard case .number(let number) = value else { throw .wrongType(path: path(of: field), expected: "a number") }
        return number
    }

    /// A whole-number field within `range`; nil when absent.
    mutating func integer(_ field: String, range: ClosedRange<Int>) throws(TopologyError) -> Int? {
        guard let number = try number(field) else { return nil }
        guard number == number.rounded(), number >= Double(range.lowerBound), number <= Double(range.upperBound) else {
            throw .invalidValue(
                path: path(of: field), value: Self.text(number),
                expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return Int(number)
    }

    /// An array field; empty when absent.
    mutating func array(_ field: String) throws(TopologyError) -> [JSONValue] {
        guard let value = value(field) else { return [] }
        guard case .array(let items) = value else { throw .wrongType(path: path(of: field), expected: "an array") }
        return items
    }

    /// An array of strings; empty when absent.
    mutating func strings(_ field: String) throws(TopologyError) -> [String] {
        var result: [String] = []
        for (i, item) in try array(field).enumerated() {
            guard case .string(let text) = item else {
                throw .wrongType(path: "\(path(of: field))[\(i)]", expected: "a string")
            }
            result.append(text)
        }
        return result
    }

    /// Throws for the first field (alphabetically) that was never read.
    func finish() throws(TopologyError) {
        if let extra = members.keys.filter({ !read.contains($0) }).sorted().first {
            throw .unknownField(path: path.isEmpty ? "top level" : path, field: extra)
        }
    }

    /// A number as written in an error message.
    static func text(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}
