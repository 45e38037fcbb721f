// Python's `repr(float)`, which both `json.dumps` and Celery's `saferepr` use.
// Swift and Python both print the shortest digits that round-trip, but place the
// exponent differently; this re-lays Swift's digits out by Python's rule.

/// Formats a `Double` exactly as CPython's `float.__repr__` does.
public enum PythonFloat {
    /// `repr(x)`: `'1.0'`, `'0.0001'`, `'1e-05'`, `'1e+16'`, `'nan'`, `'inf'`, `'-inf'`.
    public static func repr(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return layout(value)
    }

    /// What `json.dumps` writes: `repr` for finite values, else `NaN`, `Infinity`, `-Infinity`.
    public static func json(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        return layout(value)
    }

    /// Splits Swift's shortest round-trip text into digits and a decimal point
    /// position, then applies CPython's `'r'` rule: exponent form when the point
    /// lies before the fourth leading zero or beyond sixteen digits.
    private static func layout(_ value: Double) -> String {
        let text = Array(value.description.utf8)
        var i = 0
        var negative = false
        if text.first == UInt8(ascii: "-") { negative = true; i = 1 }
        var digits: [UInt8] = []
        var pointAt: Int? = nil
        var exponent = 0
        while i < text.count {
            let c = text[i]
            if c == UInt8(ascii: ".") {
                pointAt = digits.count
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                exponent = Int(String(decoding: text[(i + 1)...], as: UTF8.self)) ?? 0
                break
            } else {
                digits.append(c)
            }
            i += 1
        }
        // value = 0.d1d2…dn × 10^decpt
        var decpt = (pointAt ?? digits.count) + exponent
        while digits.count > 1, digits.first == UInt8(ascii: "0") {
            digits.removeFirst()
            decpt -= 1
        }
        while digits.count > 1, digits.last == UInt8(ascii: "0") { digits.removeLast() }
        if digits == [UInt8(ascii: "0")] { decpt = 1 }

        var out: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        if decpt <= -4 || decpt > 16 {
            out.append(digits[0])
            if digits.count > 1 {
                out.append(UInt8(ascii: "."))
                out.append(contentsOf: digits[1...])
            }
            let e = decpt - 1
            out.append(UInt8(ascii: "e"))
            out.append(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            let magnitude = Array(String(abs(e)).utf8)
            if magnitude.count < 2 { out.append(UInt8(ascii: "0")) }
            out.append(contentsOf: magnitude)
        } else if decpt <= 0 {
            out.append(contentsOf: "0.".utf8)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -decpt))
            out.append(contentsOf: digits)
        } else if decpt >= digits.count {
            out.append(contentsOf: digits)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: decpt - digits.count))
            out.append(contentsOf: ".0".utf8)
        } else {
            out.append(contentsOf: digits[..<decpt])
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: digits[decpt...])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
