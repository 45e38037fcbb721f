// The metrics and health endpoint of a running daemon: what it serves, and how the
// connections it turns away are counted and logged (rate-limited, once per quiet spell).

import CoreMetrics
import HeraldCore
import HeraldIO

extension Daemon {
    /// Binds the endpoint; a bind failure stops the start.
    func startMetricsEndpoint(_ addr: (host: String, port: Int)) throws(IOError) {
        let server = try HTTPServer(loop: loop, host: addr.host, port: addr.port) { [unowned self] method, path in
            self.serveHTTP(method: method, path: path)
        }
        var rejected: [HTTPServer.Rejection: CoreMetrics.Counter] = [:]
        for r in HTTPServer.Rejection.allCases {
            rejected[r] = Counter(
                label: "herald_http_rejected_total", dimensions: [("reason", r.rawValue)], factory: metrics.factory)
        }
        server.onRejected = { [unowned self] reason, detail in
            rejected[reason]?.increment()
            let message: String
            switch reason {
            case .descriptors, .acceptError: message = "metrics endpoint: accept failed, accepting paused for 1 s"
            case .connectionLimit: message = "metrics endpoint: connection limit reached, accepting paused"
            case .timeout, .headersTooLarge, .badRequest, .method: return
            }
            if case .log(let suppressed) = self.acceptBurst.record(now: MonotonicNow.instant) {
                self.logger.warning(
                    "\(message)", metadata: ["reason": "\(detail)", "suppressed_since_last": "\(suppressed)"])
            }
        }
        http = server
        logger.info("serving metrics", metadata: ["addr": "\(addr.host):\(server.port)"])
    }

    func serveHTTP(method: String, path: String) -> HTTPResponse {
        switch path {
        case "/metrics":
            return HTTPResponse(
                status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render())
        case "/healthz", "/health":
            let s = status()
            return HTTPResponse(
                status: s.healthy ? 200 : 503, contentType: "application/json",
                text: StatusJSON.render(s, now: loop.wallSeconds))
        default:
            return HTTPResponse(status: 404, contentType: "text/plain", text: "not found\n")
        }
    }
}
