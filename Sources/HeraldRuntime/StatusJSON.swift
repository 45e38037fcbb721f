// The JSON document /healthz serves and `herald status` prints.

import HeraldCore

/// Renders a `DaemonStatus` as JSON.
public enum StatusJSON {
    public static func render(_ s: DaemonStatus, now: Double) -> String {
        let q = HeraldLogHandler.jsonString
        var out = "{\"status\":\(q(s.healthy ? "ok" : "degraded")),\"version\":\(q(HeraldVersion.string)),"
        out += "\"instance\":\(q(s.instanceID)),\"sources\":{"
        out += s.sources.map { "\(q($0.name)):\(q($0.state))" }.joined(separator: ",")
        out += "}"
        if !s.problems.isEmpty { out += ",\"problems\":[" + s.problems.map(q).joined(separator: ",") + "]" }
        out += ",\"sweep\":{\"count\":\(s.sweeps)"
        if let t = s.lastSweepWallSeconds {
            out += ",\"last_at\":\(q(ISOTime.format(seconds: Int(t), millis: Int((t - t.rounded(.down)) * 1000))))"
            out += ",\"last_reason\":\(q(s.lastSweepReason ?? ""))"
            out += ",\"seconds_ago\":\(Int(max(0, now - t)))"
        }
        out += "}"
        if let k = s.keyspaceEvents { out += ",\"keyspace_expiry_events\":\(k)" }
        if !s.circuits.isEmpty {
            out += ",\"circuits\":{"
            out += s.circuits.map { c in
                var o = "\(q(c.dependency)):{\"state\":\(q(c.state))"
                if let f = c.lastFailure { o += ",\"last_failure\":\(q(f))" }
                return o + "}"
            }.joined(separator: ",")
            out += "}"
        }
        if let armed = s.armedPlans {
            out += ",\"schedules\":{\"armed\":\(armed),\"recent_fires\":["
            out += s.recentFires.map { f in
                "{\"plan\":\(q(f.plan)),\"scheduled_at\":\(q(ISOTime.format(seconds: Int(f.scheduledAt / 1_000_000)))),"
                    + "\"via\":\(q(f.via)),\"queue\":\"schedule_executor\"}"
            }.joined(separator: ",")
            out += "]"
            if !s.scheduleFailures.isEmpty {
                out += ",\"failing\":["
                out += s.scheduleFailures.map { f in
                    "{\"operation\":\(q(f.operation)),\"since\":\(q(ISOTime.format(seconds: Int(f.since)))),"
                        + "\"error\":\(q(f.error))}"
                }.joined(separator: ",")
                out += "]"
            }
            out += "}"
        }
        if !s.tasks.isEmpty {
            out += ",\"tasks\":["
            out += s.tasks.map { t in
                var o = "{\"task\":\(q(t.task)),\"runs\":\(q(t.runs)),\"enabled\":\(t.enabled)"
                if let n = t.nextTick { o += ",\"next_tick\":\(q(ISOTime.format(seconds: Int(n))))" }
                if let status = t.lastStatus, let at = t.lastAt {
                    o += ",\"last\":{\"status\":\(q(status)),\"at\":\(q(ISOTime.format(seconds: Int(at))))"
                    if let d = t.lastSeconds, d.isFinite { o += ",\"seconds\":\(String(format: "%.3f", d))" }
                    o += "}"
                }
                return o + "}"
            }.joined(separator: ",")
            out += "]"
        }
        out += ",\"uptime_seconds\":\(Int(max(0, now - s.startedWallSeconds)))}"
        return out
    }
}
