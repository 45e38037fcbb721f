#!/usr/bin/env python3
"""Reference answers from croniter for Herald's differential cron test.

Generates random (expression x zone x instant) cases from a fixed seed, asks croniter
for the next fire exactly as Dify's `calculate_next_run_at` does (base converted to the
zone with pytz, `croniter(expr, base_local).get_next(datetime)`), and prints one JSON
object per line:

  {"e": expr, "z": zone, "b": base unix seconds (float),
   "n": next fire unix seconds or null, "err": null | "parse" | "date" | "crash:<Type>",
   "second": true when "n" is the later instant of a repeated wall-clock time,
   "alt": the first croniter fire after "n" that is not such a second occurrence}

Usage: croniter_cases.py [COUNT] [SEED]   (defaults: 12000 20260612)
Needs croniter>=6.2.2,<7 and pytz (Dify's pins).
"""

import datetime
import json
import random
import sys

import pytz
from croniter import croniter
from croniter.croniter import CroniterBadCronError, CroniterBadDateError

UTC = datetime.timezone.utc

# DST zones docs/cron.md discusses, odd offsets, southern-hemisphere and midnight transitions.
# Left out: zones whose tzdata differs between pytz and Foundation's ICU copy in
# 2020-2033 (America/Havana, Africa/Casablanca).
ZONES = [
    "UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham",
    "Asia/Kolkata", "Europe/Berlin", "America/Los_Angeles", "Australia/Sydney",
    "Pacific/Auckland", "America/St_Johns", "Asia/Kathmandu", "America/Santiago",
    "America/Sao_Paulo", "Asia/Tokyo", "Asia/Tehran", "Pacific/Apia", "Europe/Dublin",
]
DST_ZONES = [
    "America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham",
    "Europe/Berlin", "America/Los_Angeles", "Australia/Sydney", "Pacific/Auckland",
    "America/St_Johns", "America/Santiago",
]
START = datetime.datetime(2020, 1, 1, tzinfo=UTC).timestamp()
END = datetime.datetime(2033, 1, 1, tzinfo=UTC).timestamp()

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
          "@DAILY", "@Hourly"]
INVALID = [
    "", "* * * *", "* * * * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
    "* * * 0 *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "-1 * * * *", "1-2-3 * * * *",
    "? * * * *", "* ? * * *", "* * ?5 * *", "* * * foo *", "* * * * funday", "l * * * *",
    "* * l-5 * *", "a b c d e", "1,,2 * * * *", "1, * * * *", "*/ * * * *", "/5 * * * *",
    "5/ * * * *", "** * * * *", "* * * jan-foo *", "0 0 1 1 * extra", "@reboot", " @daily",
    "H * * * *", "h(0-29) * * * *", "0 0 * * 5-8", "0 0-24 * * *", "0 0 * * 1#2,3", "0 0 * * mon#6",
    "0 0 15w,1 * *", "0 0 32w * *", "0 0 w0 * *", "0 0 * * l", "0 0 * * *#2", "0 0 l * l8",
]
IMPOSSIBLE = ["0 0 30 2 *", "0 0 31 2 *", "0 0 31 4,6,9,11 *", "15 10 30 feb *",
              "0 0 30 2 mon", "0 0 31 apr fri"]


def number(rng, field):
    lo, hi = BOUNDS[field]
    if field == 0:
        return rng.choice([0, 0, 15, 30, 45, rng.randint(lo, hi)])
    if field == 1:
        return rng.choice([0, 1, 2, 3, 23, rng.randint(lo, hi)])
    if field == 4 and rng.random() < 0.15:
        return 7
    return rng.randint(lo, hi)


def value(rng, field):
    if field == 3 and rng.random() < 0.3:
        name = rng.choice(MONTHS)
        return name.upper() if rng.random() < 0.2 else name
    if field == 4 and rng.random() < 0.3:
        name = rng.choice(DAYS)
        return name.capitalize() if rng.random() < 0.2 else name
    return str(number(rng, field))


def element(rng, field):
    lo, hi = BOUNDS[field]
    kind = rng.random()
    if kind < 0.45:
        return value(rng, field)
    if kind < 0.65:
        a, b = value(rng, field), value(rng, field)  # may wrap (b < a) or be equal
        return f"{a}-{b}" + (f"/{rng.randint(1, 7)}" if rng.random() < 0.3 else "")
    if kind < 0.8:
        return f"*/{rng.choice([1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 90])}"
    if kind < 0.9:
        return f"{rng.randint(lo, hi)}/{rng.randint(1, 20)}"
    if field == 2:
        return "L" if rng.random() < 0.5 else "l"
    return value(rng, field)


def nth_weekday(rng):
    """croniter's day-of-week extensions: `2#3`, `mon#1`, `mon-wed#2`, `L5`."""
    def one():
        r = rng.random()
        if r < 0.35:
            return f"{rng.randint(0, 7)}#{rng.randint(1, 5)}"
        if r < 0.55:
            return f"{rng.choice(DAYS)}#{rng.randint(1, 5)}"
        if r < 0.7:
            a, b = rng.sample(DAYS, 2)
            return f"{a}-{b}#{rng.randint(1, 5)}"
        return f"{rng.choice('lL')}{rng.randint(0, 7)}"
    return ",".join(one() for _ in range(rng.choice([1, 1, 1, 2, 3])))


def field_text(rng, field):
    if field == 4 and rng.random() < 0.08:
        return nth_weekday(rng)
    if field == 2 and rng.random() < 0.05:
        day = rng.choice([1, 2, 15, 28, 29, 30, 31, rng.randint(1, 31)])
        return rng.choice([f"{day}W", f"{day}w", f"W{day}"])
    r = rng.random()
    if r < 0.35 and field >= 2:
        return "*"
    if r < 0.15:
        return "*"
    if field in (2, 4) and r < 0.42:
        return "?"
    count = 1 if rng.random() < 0.7 else rng.randint(2, 4)
    return ",".join(element(rng, field) for _ in range(count))


def expression(rng):
    r = rng.random()
    if r < 0.04:
        return rng.choice(MACROS)
    if r < 0.07:
        return rng.choice(INVALID)
    if r < 0.08:
        return rng.choice(IMPOSSIBLE)
    if r < 0.40:  # Dify's visual modes and plain fixed-time jobs near DST hours
        m = rng.choice([0, 0, 15, 30, 45, rng.randint(0, 59)])
        h = rng.choice([0, 1, 1, 2, 2, 3, 23, rng.randint(0, 23)])
        mode = rng.randint(0, 5)
        if mode == 0:
            return f"{m} * * * *"
        if mode in (1, 2):
            return f"{m} {h} * * *"
        if mode == 3:
            dows = sorted(rng.sample(range(7), rng.randint(1, 3)))
            return f"{m} {h} * * {','.join(map(str, dows))}"
        if mode == 4:
            days = sorted(rng.sample(range(1, 32), rng.randint(1, 3)))
            return f"{m} {h} {','.join(map(str, days))},L * *"
        return f"{m},{(m + 30) % 60} {h},{(h + 1) % 24} * * *"
    fields = [field_text(rng, f) for f in range(5)]
    if "#" in fields[4] or fields[4].lower().startswith("l"):
        # croniter intersects day-of-month with '#'/'L' weekdays even in OR mode and
        # gives up when that never happens; keep most such cases firing.
        fields[2] = rng.choice(["*", "*", "?", fields[2]])
    return " ".join(fields)


def transitions(zone):
    tz = pytz.timezone(zone)
    times = getattr(tz, "_utc_transition_times", [])
    out = []
    for t in times:
        ts = t.replace(tzinfo=UTC).timestamp()
        if START <= ts < END:
            out.append(ts)
    return out


def base_instant(rng, zone, table):
    if zone in table and table[zone] and rng.random() < 0.6:
        t = rng.choice(table[zone]) + rng.randint(-4 * 3600, 4 * 3600)
    else:
        t = rng.uniform(START, END)
    r = rng.random()
    if r < 0.3:
        return float(int(t) - int(t) % 60)  # on a whole minute
    if r < 0.6:
        return float(int(t))
    return round(t, 6)


def second_occurrence(fire, tz):
    naive = fire.replace(tzinfo=None)
    try:
        tz.localize(naive, is_dst=None)
        return False
    except pytz.AmbiguousTimeError:
        a = tz.localize(naive, is_dst=True).astimezone(UTC)
        b = tz.localize(naive, is_dst=False).astimezone(UTC)
        return fire.astimezone(UTC) == max(a, b) and a != b
    except pytz.NonExistentTimeError:
        return False


def dify_next(expr, tz, base_utc):
    """Dify's calculate_next_run_at, with `base` instead of now."""
    return croniter(expr, base_utc.astimezone(tz)).get_next(datetime.datetime)


def case(rng, table):
    expr = expression(rng)
    zone = rng.choice(ZONES if rng.random() < 0.5 else DST_ZONES)
    tz = pytz.timezone(zone)
    base = base_instant(rng, zone, table)
    out = {"e": expr, "z": zone, "b": base, "n": None, "err": None, "second": False, "alt": None}
    try:
        fire = dify_next(expr, tz, datetime.datetime.fromtimestamp(base, UTC))
    except CroniterBadDateError:
        out["err"] = "date"
        return out
    except CroniterBadCronError:
        out["err"] = "parse"
        return out
    except Exception as exc:  # croniter bugs, e.g. AssertionError for Europe/Dublin
        out["err"] = "crash:" + type(exc).__name__
        return out
    out["n"] = int(fire.timestamp())
    if second_occurrence(fire, tz):
        out["second"] = True
        alt = fire
        for _ in range(8):
            alt = croniter(expr, alt).get_next(datetime.datetime)
            if not second_occurrence(alt, tz):
                break
        out["alt"] = int(alt.timestamp())
    return out


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20260612
    rng = random.Random(seed)
    table = {zone: transitions(zone) for zone in ZONES}
    lines = [json.dumps(case(rng, table), separators=(",", ":")) for _ in range(count)]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
