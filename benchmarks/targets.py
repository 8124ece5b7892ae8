"""The targets of issues 18 and 6, checked against one run's figures: PASS, MISS or SKIP each.

Every line of issue 18 also names the floor that bounds it, measured in the same run: the
best ratio any session layer could reach on that service (the bare driver doing the same
round trips and the same JSON), so a MISS says how far the floor itself is from the target.
Framework peers (Flask, Django) count their session layer alone, the median less the
framework's own cost (:meth:`Results.session_cost`).
"""

from __future__ import annotations

from collections.abc import Callable

from .callgrind import Counts
from .http import HttpResult, find
from .inprocess import (
    PG_READ_FLOOR,
    PG_WRITE_FLOOR,
    REDIS_RAW_FLOOR,
    REDIS_RAW_READ_FLOOR,
    SQLITE_JSON_FLOOR,
    Results,
)

FLOORS_US = 15.0  # issue 6: SqliteStore write may cost at most the sqlite3 floor plus this

Add = Callable[..., None]


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.missed = 0

    def add(self, target: str, ok: bool | None, measured: str, bound: str = "") -> None:
        verdict = "SKIP" if ok is None else "PASS" if ok else "MISS"
        if ok is False:
            self.missed += 1
        line = f"{verdict}  {target:<62} {measured}"
        if bound:
            line += f"  [bound: {bound}]"
        self.lines.append(line)


def check(
    results: Results | None, http: list[HttpResult] | None, counts: Counts | None = None
) -> str:
    """Return one PASS/MISS/SKIP line per target, issue 18's first, then issue 6's."""
    report = _Report()
    report.lines.append("Issue 18 (ratios of one run; [bound: …] is the floor's own ratio)")
    _issue18(results, http, counts, report.add)
    report.lines.append("")
    report.lines.append("Issue 6")
    if results is not None:
        _inprocess(results, report.add)
    if http is not None:
        _http(http, report.add)
    report.lines.append(f"{report.missed} target(s) missed")
    return "\n".join(report.lines)


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _us(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _ratio_line(
    add: Add,
    results: Results,
    target: str,
    limit: float,
    ours: str,
    theirs: str,
    scenario: str,
    floor: str | None = None,
    core: str | None = None,
) -> None:
    """One "ours / theirs <= limit" line, with the floor's own ratio to *theirs* as its bound.

    *core*, for a framework integration, is the same store through the plain WSGI middleware:
    its ratio to *theirs* shows how much of the line the store itself takes.
    """
    ratio = results.ratio(ours, theirs, scenario)
    if ratio is None:
        missing = [n for n in (ours, theirs) if results.row(n) is None]
        add(target, None, f"not measured: {', '.join(missing) or theirs + ' under 1 µs'}")
        return
    a = results.session_cost(ours, scenario) or 0.0
    b = results.session_cost(theirs, scenario) or 0.0
    bound = ""
    floor_timing = results.floors.get(floor) if floor else None
    if floor_timing is not None:
        bound = f"{floor} {_us(floor_timing.median)} µs = {_x(floor_timing.median / b)}"
    core_cost = results.median(core, scenario) if core else None
    if core_cost is not None and b:
        bound += f"; the store alone, through the WSGI middleware, {_us(core_cost)} µs = "
        bound += _x(core_cost / b)
    add(target, ratio <= limit, f"{_us(a)} / {_us(b)} µs = {_x(ratio)}", bound)


def _floor_line(
    add: Add,
    results: Results,
    target: str,
    limit: float,
    ours: str,
    scenario: str,
    floor: str,
    session_layer: str = "wsgisession:memory",
) -> None:
    """One "ours / floor <= limit" line; the bound is what the session layer alone adds."""
    value = results.median(ours, scenario)
    timing = results.floors.get(floor)
    if value is None or timing is None:
        add(target, None, f"not measured: {ours if value is None else floor}")
        return
    ratio = value / timing.median
    layer = results.median(session_layer, scenario)
    bound = ""
    if layer is not None:
        bound = (
            f"the floor plus a whole MemoryStore {scenario} ({_us(layer)} µs) would be "
            f"{_x((timing.median + layer) / timing.median)}"
        )
    add(target, ratio <= limit, f"{_us(value)} / {_us(timing.median)} µs = {_x(ratio)}", bound)


def _issue18(
    results: Results | None,
    http: list[HttpResult] | None,
    counts: Counts | None,
    add: Add,
) -> None:
    if results is None:
        add("in-process targets", None, "the in-process run was skipped")
    else:
        _ratio_line(
            add, results, "RedisStore write / Beaker ext:redis <= 0.75x", 0.75,
            "wsgisession:redis", "beaker:redis", "write", REDIS_RAW_FLOOR,
        )  # fmt: skip
        _ratio_line(
            add, results, "RedisStore read / Beaker ext:redis <= 0.5x", 0.5,
            "wsgisession:redis", "beaker:redis", "read", REDIS_RAW_READ_FLOOR,
        )  # fmt: skip
        _ratio_line(
            add, results, "RedisStore write / Django cache engine <= 0.5x", 0.5,
            "wsgisession:redis", "django:cache", "write", REDIS_RAW_FLOOR,
        )  # fmt: skip
        _ratio_line(
            add, results, "RedisStore write / django-redis <= 0.5x", 0.5,
            "wsgisession:redis", "django:django-redis", "write", REDIS_RAW_FLOOR,
        )  # fmt: skip
        _floor_line(
            add, results, "PostgresStore write / bare psycopg SELECT + UPDATE <= 1.1x", 1.1,
            "wsgisession:postgres", "write", PG_WRITE_FLOOR,
        )  # fmt: skip
        _floor_line(
            add, results, "PostgresStore read / bare psycopg SELECT <= 2x", 2.0,
            "wsgisession:postgres", "read", PG_READ_FLOOR,
        )  # fmt: skip
        _ratio_line(
            add, results, "PostgresStore write / Django db engine <= 0.5x", 0.5,
            "wsgisession:postgres", "django:db", "write", PG_WRITE_FLOOR,
        )  # fmt: skip
        for scenario in ("read", "write"):
            _ratio_line(
                add, results, f"MemoryStore {scenario} / Beaker memory <= 0.45x", 0.45,
                "wsgisession:memory", "beaker:memory", scenario,
            )  # fmt: skip
        _ratio_line(
            add, results, "SqliteStore write / Beaker file <= 0.1x", 0.1,
            "wsgisession:sqlite", "beaker:file", "write", SQLITE_JSON_FLOOR,
        )  # fmt: skip
    _instructions_line(add, results, counts)
    if results is not None:
        _ratio_line(
            add, results, "Flask integration write / Flask-Session Redis <= 0.5x", 0.5,
            "flask:wsgisession-redis", "flask:redis", "write", REDIS_RAW_FLOOR,
            "wsgisession:redis",
        )  # fmt: skip
        _ratio_line(
            add, results, "Django engine write / Django cache engine <= 0.5x", 0.5,
            "django:wsgisession-redis", "django:cache", "write", REDIS_RAW_FLOOR,
            "wsgisession:redis",
        )  # fmt: skip
    _keep_alive_lines(add, http)


def _instructions_line(add: Add, results: Results | None, counts: Counts | None) -> None:
    target = "SqliteStore write / sqlite3 floor with JSON (instructions) <= 1.5x"
    ours = counts.get("wsgisession:sqlite", "write") if counts else None
    floor = counts.get("floor:sqlite", "write") if counts else None
    if ours is None or floor is None:
        add(target, None, "callgrind did not run (valgrind missing, or --no-callgrind)")
        return
    ratio = ours / floor
    bound = ""
    layer = counts.get("wsgisession:memory", "write") if counts else None
    if layer is not None:
        bound = (
            f"the floor plus a whole MemoryStore write ({layer:,.0f}) would be "
            f"{_x((floor + layer) / floor)}"
        )
    add(target, ratio <= 1.5, f"{ours:,.0f} / {floor:,.0f} instructions = {_x(ratio)}", bound)


def _keep_alive_lines(add: Add, http: list[HttpResult] | None) -> None:
    sqlite_target = "HTTP keep-alive: SqliteStore write / sqlite3 floor app >= 90%"
    memory_target = "HTTP keep-alive: MemoryStore write / bare >= 75%"
    if http is None:
        add(sqlite_target, None, "the HTTP run was skipped")
        add(memory_target, None, "the HTTP run was skipped")
        return
    mode = "keep-alive"
    bare = find(http, "bare", "bare", mode)
    sqlite = find(http, "wsgisession:sqlite", "write", mode)
    floor = find(http, "floor:sqlite", "write", mode)
    if sqlite and floor:
        bound = f"the floor app is {floor.rps / bare.rps:.0%} of bare" if bare else ""
        add(
            sqlite_target,
            sqlite.rps >= 0.9 * floor.rps,
            f"{sqlite.rps:,.0f} / {floor.rps:,.0f} req/s = {sqlite.rps / floor.rps:.0%}",
            bound,
        )
    else:
        add(sqlite_target, None, "not measured")
    memory = find(http, "wsgisession:memory", "write", mode)
    untouched = find(http, "wsgisession:memory", "untouched", mode)
    if memory and bare:
        bound = (
            f"the same server with the session untouched is {untouched.rps / bare.rps:.0%}"
            if untouched
            else ""
        )
        add(
            memory_target,
            memory.rps >= 0.75 * bare.rps,
            f"{memory.rps:,.0f} / {bare.rps:,.0f} req/s = {memory.rps / bare.rps:.0%}",
            bound,
        )
    else:
        add(memory_target, None, "not measured")


# Issue 6 ----------------------------------------------------------------------------------


def _inprocess(results: Results, add: Add) -> None:
    ours = [r for r in results.rows if r.family == "wsgisession" and r.skipped is None]

    worst = max(ours, key=lambda r: r.timings["untouched"].median, default=None)
    if worst is not None:
        value = worst.timings["untouched"].median
        add(
            "untouched <= 1.0 µs (every store)",
            value <= 1.0,
            f"worst {value:.2f} µs ({worst.label})",
        )

    for scenario in ("read", "write"):
        a = results.median("wsgisession:memory", scenario)
        b = results.median("beaker:memory", scenario)
        if a is not None and b is not None:
            add(
                f"MemoryStore {scenario} <= 0.5x Beaker memory",
                a <= 0.5 * b,
                f"{a:.1f} / {b:.1f} µs = {a / b:.2f}x",
            )

    floor = results.floors.get("sqlite3 get+upsert (WAL)")
    sqlite_write = results.median("wsgisession:sqlite", "write")
    if floor is not None and sqlite_write is not None:
        # What the budget above the floor goes to before SQLite is reached, for reading a MISS.
        context = []
        memory_write = results.median("wsgisession:memory", "write")
        if memory_write is not None:
            context.append(f"a whole MemoryStore write {memory_write:.1f}")
        json_floor = results.floors.get("JSON dumps+loads (300 B)")
        if json_floor is not None:
            context.append(f"JSON dumps+loads {json_floor.median:.1f}")
        add(
            f"SqliteStore write <= sqlite3 floor + {FLOORS_US:g} µs",
            sqlite_write <= floor.median + FLOORS_US,
            f"{sqlite_write:.1f} µs vs floor {floor.median:.1f} µs "
            f"(+{sqlite_write - floor.median:.1f})"
            + (f"; {', '.join(context)} µs" if context else ""),
        )

    redis_row = results.row("wsgisession:redis")
    beaker_redis = results.median("beaker:redis", "write")
    if redis_row is not None and beaker_redis is not None:
        ours_write = redis_row.timings["write"].median
        trips = redis_row.trips.get("write", {})
        one_each = trips.get("load") == 1 and trips.get("save") == 1
        redis_floor = results.floors.get("redis-py GET+SET")
        add(
            "RedisStore write <= 0.8x Beaker ext:redis",
            ours_write <= 0.8 * beaker_redis,
            f"{ours_write:.0f} / {beaker_redis:.0f} µs = {ours_write / beaker_redis:.2f}x"
            + (
                f"; two round trips alone (redis-py GET+SET) {redis_floor.median:.0f} µs"
                if redis_floor is not None
                else ""
            ),
        )
        add(
            "RedisStore write: 1 round trip to load, 1 to save",
            one_each,
            f"load {trips.get('load', 0):g}, save {trips.get('save', 0):g}",
        )
    else:
        add("RedisStore write <= 0.8x Beaker ext:redis", None, "RedisStore or Redis missing")

    for row in ours:
        forged = row.timings["forged"].median
        calls = sum(row.calls.get("forged", {}).values())
        add(
            f"forged <= 8 µs and 0 store calls: {row.label}",
            forged <= 8.0 and calls == 0,
            f"{forged:.2f} µs, {calls:g} calls",
        )


def _http(http: list[HttpResult], add: Add) -> None:
    sqlite = find(http, "wsgisession:sqlite", "write")
    beaker_file = find(http, "beaker:file", "write")
    bare = find(http, "bare", "bare")
    # The bare sqlite3 get+upsert in the same server: the ceiling of any SQLite-backed session.
    floor = find(http, "floor:sqlite", "write")
    if sqlite and beaker_file:
        add(
            "HTTP SqliteStore write >= 2.5x Beaker file req/s",
            sqlite.rps >= 2.5 * beaker_file.rps,
            f"{sqlite.rps:,.0f} / {beaker_file.rps:,.0f} = {sqlite.rps / beaker_file.rps:.2f}x"
            + (f"; sqlite3 floor {floor.rps / beaker_file.rps:.2f}x" if floor else ""),
        )
    if sqlite and bare:
        add(
            "HTTP SqliteStore write >= 70% of bare",
            sqlite.rps >= 0.7 * bare.rps,
            f"{sqlite.rps:,.0f} / {bare.rps:,.0f} = {sqlite.rps / bare.rps:.0%}"
            + (f"; sqlite3 floor {floor.rps / bare.rps:.0%}" if floor else ""),
        )
    redis = find(http, "wsgisession:redis", "write")
    beaker_redis = find(http, "beaker:redis", "write")
    if redis and beaker_redis:
        add(
            "HTTP RedisStore write >= 1.2x Beaker ext:redis",
            redis.rps >= 1.2 * beaker_redis.rps,
            f"{redis.rps:,.0f} / {beaker_redis.rps:,.0f} = {redis.rps / beaker_redis.rps:.2f}x",
        )
    else:
        add("HTTP RedisStore write >= 1.2x Beaker ext:redis", None, "RedisStore or Redis missing")
