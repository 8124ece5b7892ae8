"""The targets of issue 6, checked against one run's medians: PASS or MISS beside each."""

from __future__ import annotations

from collections.abc import Callable

from .http import HttpResult, find
from .inprocess import Results

FLOORS_US = 15.0  # SqliteStore write may cost at most the sqlite3 floor plus this


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.missed = 0

    def add(self, target: str, ok: bool | None, measured: str) -> None:
        verdict = "SKIP" if ok is None else "PASS" if ok else "MISS"
        if ok is False:
            self.missed += 1
        self.lines.append(f"{verdict}  {target:<58} {measured}")


def check(results: Results | None, http: list[HttpResult] | None) -> str:
    """Return one PASS/MISS/SKIP line per target."""
    report = _Report()
    if results is not None:
        _inprocess(results, report.add)
    if http is not None:
        _http(http, report.add)
    report.lines.append(f"{report.missed} target(s) missed")
    return "\n".join(report.lines)


def _inprocess(results: Results, add: Callable[[str, bool | None, str], None]) -> None:
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


def _http(http: list[HttpResult], add: Callable[[str, bool | None, str], None]) -> None:
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
