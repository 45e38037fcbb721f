// Reads a kombu Redis envelope back into its parts, for tests and diagnostics
// (checking what Herald or Celery put on a list). It uses Foundation's
// JSONSerialization on purpose: an independent parser, not the encoder's mirror.

import Foundation

/// Why an envelope could not be read.
public enum CeleryDecodeError: Error, Sendable, Equatable {
    /// The element (or the decoded body) is not JSON.
    case notJSON(part: String)
    /// A required field is absent.
    case missingField(String)
    /// A field has the wrong JSON type.
    case wrongType(field: String)
    /// `body` is not valid base64.
    case invalidBase64
    /// The body is not `[args, kwargs, embed]`.
    case invalidBody
}

/// One decoded message: the parts a test compares, plus the key sets to pin the format.
public struct DecodedCeleryMessage: Sendable, Equatable {
    /// `headers.task`.
    public var task: String
    /// `headers.id`.
    public var id: String
    /// `properties.delivery_info.routing_key`: the queue.
    public var queue: String
    /// Positional arguments from the body.
    public var args: [CeleryValue]
    /// Keyword arguments from the body (JSONSerialization does not keep order).
    public var kwargs: [String: CeleryValue]
    /// The body's third element (`callbacks`, `errbacks`, `chain`, `chord`).
    public var embed: [String: CeleryValue]
    /// Top-level keys of the envelope.
    public var envelopeKeys: Set<String>
    /// Keys of `headers`.
    public var headerKeys: Set<String>
    /// Keys of `properties`.
    public var propertyKeys: Set<String>
    /// Every header, converted (objects inside have keys sorted).
    public var headers: [String: CeleryValue]
    /// Every property, converted.
    public var properties: [String: CeleryValue]
}

/// Parses envelopes with Foundation.
public enum CeleryEnvelopeDecoder {
    /// Decodes one list element as LPUSHed by Celery or Herald.
    public static func decode(_ element: [UInt8]) throws(CeleryDecodeError) -> DecodedCeleryMessage {
        let envelope = try object(element, part: "envelope")
        guard let headersAny = envelope["headers"] else { throw .missingField("headers") }
        guard let headers = headersAny as? [String: Any] else { throw .wrongType(field: "headers") }
        guard let propertiesAny = envelope["properties"] else { throw .missingField("properties") }
        guard let properties = propertiesAny as? [String: Any] else { throw .wrongType(field: "properties") }
        guard let bodyAny = envelope["body"] else { throw .missingField("body") }
        guard let bodyText = bodyAny as? String else { throw .wrongType(field: "body") }
        guard let bodyBytes = Base64.decode(bodyText) else { throw .invalidBase64 }

        let bodyJSON: Any
        do {
            bodyJSON = try JSONSerialization.jsonObject(with: Data(bodyBytes), options: [.fragmentsAllowed])
        } catch {
            throw .notJSON(part: "body")
        }
        guard let parts = bodyJSON as? [Any], parts.count == 3,
            let args = parts[0] as? [Any], let kwargs = parts[1] as? [String: Any],
            let embed = parts[2] as? [String: Any]
        else { throw .invalidBody }

        guard let deliveryInfo = properties["delivery_info"] as? [String: Any] else {
            throw .missingField("properties.delivery_info")
        }
        return DecodedCeleryMessage(
            task: try string(headers, "task"),
            id: try string(headers, "id"),
            queue: try string(deliveryInfo, "routing_key"),
            args: args.map(convert),
            kwargs: kwargs.mapValues(convert),
            embed: embed.mapValues(convert),
            envelopeKeys: Set(envelope.keys),
            headerKeys: Set(headers.keys),
            propertyKeys: Set(properties.keys),
            headers: headers.mapValues(convert),
            properties: properties.mapValues(convert)
        )
    }

    /// Decodes a String element (as read from Redis).
    public static func decode(_ element: String) throws(CeleryDecodeError) -> DecodedCeleryMessage {
        try decode(Array(element.utf8))
    }

    private static func object(_ bytes: [UInt8], part: String) throws(CeleryDecodeError) -> [String: Any] {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw .notJSON(part: part)
        }
        guard let dict = parsed as? [String: Any] else { throw .wrongType(field: part) }
        return dict
    }

    private static func string(_ dict: [String: Any], _ key: String) throws(CeleryDecodeError) -> String {
        guard let value = dict[key] else { throw .missingField(key) }
        guard let text = value as? String else { throw .wrongType(field: key) }
        return text
    }

    /// Converts what `JSONSerialization` returns to a `CeleryValue`: booleans are told from
    /// numbers by the NSNumber's objCType (`c`), integers from floats by `d`/`f`; object
    /// members come out sorted by key.
    public static func value(fromJSONObject any: Any) -> CeleryValue {
        convert(any)
    }

    static func convert(_ any: Any) -> CeleryValue {
        switch any {
        case is NSNull: return .null
        case let s as String: return .string(s)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": return .bool(n.boolValue)
            case "d", "f": return .double(n.doubleValue)
            default: return .int(n.int64Value)
            }
        case let a as [Any]: return .array(a.map(convert))
        case let d as [String: Any]:
            return .object(d.keys.sorted().map { CeleryMember($0, convert(d[$0]!)) })
        default: return .null
        }
    }
}
