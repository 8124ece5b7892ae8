"""In-process benchmarks: each contender's WSGI app called directly with prebuilt environs.

No server and no sockets between the caller and the app: what is measured is the session layer
(and its store). Environs are copied before the clock starts, the garbage collector is off while
it runs, and every figure is the median over several repeats, with their min and max.
"""

from __future__ import annotations

import collections
import gc
import hashlib
import hmac
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .contenders import (
    FLOOR_SELECT,
    FLOOR_UPSERT,
    SETUP_DATA,
    Contender,
    Context,
    Environ,
    WSGIApp,
    build,
    environ_for,
    forged_cookie,
    missing,
    postgres_available,
    redis_available,
    session_cookie,
    sqlite_floor_connection,
)

SCENARIOS = ["bare", "untouched", "new-write", "read", "write", "forged"]
PATHS = {
    "bare": "/untouched",
    "untouched": "/untouched",
    "new-write": "/new",
    "read": "/read",
    "write": "/write",
    "forged": "/read",
}

CONTENDERS = [
    "wsgisession:memory",
    "wsgisession:sqlite",
    "wsgisession:redis",
    "wsgisession:postgres",
    "wsgisession:cookie",
    "beaker:memory",
    "beaker:memory-signed",
    "beaker:file",
    "beaker:redis",
    "beaker:cookie",
    "flask:cookie",
    "flask:redis",
]


@dataclass(frozen=True)
class Timing:
    """Median, min and max of the per-call time over the repeats, in microseconds."""

    median: float
    low: float
    high: float
    calls: int

    def cell(self) -> str:
        return f"{_num(self.median)} ({_num(self.low)}-{_num(self.high)})"


def _num(us: float) -> str:
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:.0f}"


def measure(batch: Callable[[int], float], repeats: int, budget: float) -> Timing:
    """Time ``batch(n)`` (which returns the seconds n calls took) over *repeats* repeats.

    *n* is chosen so one repeat takes about *budget* seconds.
    """
    batch(5)  # warm up: first-call costs (prepared statements, imports) are not the steady state
    probe = max(batch(20) / 20, 1e-8)
    n = int(min(max(budget / probe, 20), 20000))
    samples = []
    for _ in range(repeats):
        samples.append(batch(n) / n * 1e6)
    return Timing(statistics.median(samples), min(samples), max(samples), n)


def _start_response(status: str, headers: Any, exc_info: Any = None) -> None:
    return None


def app_batch(app: WSGIApp, environ: Environ) -> Callable[[int], float]:
    """A batch runner that calls *app* with fresh copies of *environ* and consumes the body."""

    def batch(n: int) -> float:
        environs = [dict(environ) for _ in range(n)]
        sr = _start_response
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for env in environs:
                result = app(env, sr)
                if result.__class__ is not list:
                    for _ in result:
                        pass
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            return time.perf_counter() - start
        finally:
            gc.enable()

    return batch


def loop_batch(step: Callable[[], object]) -> Callable[[int], float]:
    """A batch runner that calls *step* n times."""

    def batch(n: int) -> float:
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(n):
                step()
            return time.perf_counter() - start
        finally:
            gc.enable()

    return batch


# Results ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One contender's figures: a Timing and the store calls per request, for each scenario."""

    name: str
    label: str
    family: str
    timings: dict[str, Timing] = field(default_factory=dict)
    #: Store calls per request by scenario, e.g. {"load": 1.0, "save": 1.0}.
    calls: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Redis round trips per store call by scenario and method.
    trips: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: str | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    floors: dict[str, Timing] = field(default_factory=dict)
    skipped_floors: dict[str, str] = field(default_factory=dict)

    def row(self, name: str) -> Row | None:
        for row in self.rows:
            if row.name == name and row.skipped is None:
                return row
        return None

    def median(self, name: str, scenario: str) -> float | None:
        row = self.row(name)
        timing = row.timings.get(scenario) if row is not None else None
        return timing.median if timing is not None else None


# Running ------------------------------------------------------------------------------------


def scenario_environs(contender: Contender) -> dict[str, Environ]:
    """The environ of each scenario for *contender*, with a freshly made 10-key session."""
    cookie = session_cookie(contender.app, "/setup")
    return {
        "untouched": environ_for("/untouched", cookie),
        "new-write": environ_for("/new"),
        "read": environ_for("/read", cookie),
        "write": environ_for("/write", cookie),
        "forged": environ_for("/read", forged_cookie(cookie)),
    }


def count_calls(contender: Contender, environs: Mapping[str, Environ], row: Row) -> None:
    """Fill in the store calls (and Redis round trips) per request of every scenario."""
    assert contender.counted is not None and contender.counter is not None
    counter = contender.counter
    requests = 20
    for scenario, environ in environs.items():
        counter.reset()
        counter.trips.clear()
        app_batch(contender.counted, environ)(requests)
        calls = collections.Counter(counter.calls)
        row.calls[scenario] = {k: v / requests for k, v in calls.items()}
        if contender.redis:
            row.trips[scenario] = {k: counter.trips[k] / calls[k] for k in calls}


def run_contender(
    name: str, ctx: Context, repeats: int, budget: float, log: Callable[[str], None]
) -> Row:
    reason = missing(name)
    if reason is not None:
        return Row(name, name, name.split(":")[0], skipped=reason)
    contender = build(name, ctx)
    row = Row(name, contender.label, contender.family)
    try:
        environs = scenario_environs(contender)
        for scenario, environ in environs.items():
            row.timings[scenario] = measure(app_batch(contender.app, environ), repeats, budget)
            log(f"  {contender.label:<28} {scenario:<10} {row.timings[scenario].cell()} µs")
        if contender.counted is not None:
            count_calls(contender, environs, row)
    finally:
        contender.close()
    return row


def run_bare(ctx: Context, repeats: int, budget: float, log: Callable[[str], None]) -> list[Row]:
    rows = []
    plain = build("bare", ctx)
    row = Row("bare", "plain WSGI app (bare)", "bare")
    row.timings["bare"] = measure(app_batch(plain.app, environ_for("/untouched")), repeats, budget)
    log(f"  {row.label:<28} bare       {row.timings['bare'].cell()} µs")
    rows.append(row)
    flask_bare = build("flask:bare", ctx)
    row = Row("flask:bare", flask_bare.label, "flask")
    row.timings["bare"] = measure(
        app_batch(flask_bare.app, environ_for("/untouched")), repeats, budget
    )
    log(f"  {row.label:<28} bare       {row.timings['bare'].cell()} µs")
    rows.append(row)
    return rows


# Floors -----------------------------------------------------------------------------------

_VALUE = json.dumps(dict(SETUP_DATA), separators=(",", ":"))


def floors(ctx: Context, repeats: int, budget: float, results: Results) -> None:
    """The cost of the store operations alone, and of the pieces a request is made of."""
    value = _VALUE
    key = hashlib.sha256(secrets.token_bytes(32)).hexdigest()

    # sqlite3 get + upsert, the same statements as the HTTP floor.
    conn = sqlite_floor_connection(os.path.join(ctx.root, "floor.db"))
    conn.execute(FLOOR_UPSERT, (key, value))

    # Two records of the same size taken in turn, as the counter changes on every write: an
    # upsert of the very same text would leave the page unchanged and write nothing.
    values = [json.dumps({**SETUP_DATA, "n": n}, separators=(",", ":")) for n in (0, 1)]
    turn = [0]

    def sqlite_step() -> None:
        conn.execute(FLOOR_SELECT, (key,)).fetchone()
        turn[0] ^= 1
        conn.execute(FLOOR_UPSERT, (key, values[turn[0]]))

    results.floors["sqlite3 get+upsert (WAL)"] = measure(loop_batch(sqlite_step), repeats, budget)
    conn.close()

    reason = redis_available()
    if reason is None:
        import redis

        client = redis.Redis.from_url(ctx.redis_url)
        rkey = f"{ctx.token}:floor"
        client.set(rkey, value)

        def redis_step() -> None:
            client.get(rkey)
            client.set(rkey, value)

        results.floors["redis-py GET+SET"] = measure(loop_batch(redis_step), repeats, budget)
        client.delete(rkey)
        client.close()
    else:
        results.skipped_floors["redis-py GET+SET"] = reason

    reason = postgres_available()
    if reason is None:
        import psycopg

        table = ctx.table("floor")
        with psycopg.connect(ctx.postgres_dsn, autocommit=True) as pg:
            pg.execute(f'CREATE TABLE "{table}" (key text PRIMARY KEY, data text NOT NULL)')
            pg.execute(f'INSERT INTO "{table}" VALUES (%s, %s)', (key, value))
            pselect = f'SELECT data FROM "{table}" WHERE key = %s'
            pupsert = (
                f'INSERT INTO "{table}" (key, data) VALUES (%s, %s) '
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data"
            )

            def pg_step() -> None:
                pg.execute(pselect, (key,)).fetchone()
                pg.execute(pupsert, (key, value))

            results.floors["psycopg select+upsert"] = measure(loop_batch(pg_step), repeats, budget)
            pg.execute(f'DROP TABLE "{table}"')
    else:
        results.skipped_floors["psycopg select+upsert"] = reason

    # The pieces of a request, for reading the overheads.
    results.floors["JSON dumps+loads (300 B)"] = measure(
        loop_batch(lambda: json.loads(json.dumps(dict(SETUP_DATA)))), repeats, budget
    )
    secret = secrets.token_bytes(32)
    sid = secrets.token_urlsafe(32).encode()

    def hmac_step() -> None:
        sig = hmac.new(secret, sid, hashlib.sha256).digest()
        hmac.compare_digest(sig, hmac.new(secret, sid, hashlib.sha256).digest())

    results.floors["HMAC-SHA256 sign+verify"] = measure(loop_batch(hmac_step), repeats, budget)
    from webob.cookies import make_cookie, parse_cookie

    header = f"wsgisession={sid.decode()}.{secrets.token_urlsafe(32)}"
    results.floors["WebOb parse_cookie (1 cookie)"] = measure(
        loop_batch(lambda: list(parse_cookie(header))), repeats, budget
    )
    results.floors["WebOb make_cookie"] = measure(
        loop_batch(
            lambda: make_cookie(
                "wsgisession", sid, max_age=1209600, path="/", httponly=True, samesite="Lax"
            )
        ),
        repeats,
        budget,
    )


def run(
    ctx: Context,
    *,
    repeats: int = 7,
    budget: float = 0.05,
    contenders: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> Results:
    """Run every in-process benchmark and the floors; return the results."""
    results = Results()
    log("in-process: bare apps")
    results.rows.extend(run_bare(ctx, repeats, budget, log))
    for name in contenders or CONTENDERS:
        log(f"in-process: {name}")
        row = run_contender(name, ctx, repeats, budget, log)
        if row.skipped:
            log(f"  skipped: {row.skipped}")
        results.rows.append(row)
    log("floors")
    floors(ctx, repeats, budget, results)
    return results


def format_calls(calls: Mapping[str, float]) -> str:
    """``load 1 + save 1`` style, or ``0``."""
    if not calls:
        return "0"
    total = sum(calls.values())
    return f"{total:g}"


def table(results: Results) -> str:
    """The in-process table, Markdown, with the store calls per request in brackets."""
    header = "| contender | " + " | ".join(SCENARIOS) + " |"
    lines = [header, "|---|" + "---:|" * len(SCENARIOS)]
    for row in results.rows:
        if row.skipped:
            lines.append(f"| {row.label} | skipped: {row.skipped} |" + " |" * (len(SCENARIOS) - 1))
            continue
        cells = []
        for scenario in SCENARIOS:
            timing = row.timings.get(scenario)
            if timing is None:
                cells.append("—")
                continue
            cell = timing.cell()
            if scenario in row.calls:
                cell += f" [{format_calls(row.calls[scenario])}]"
            cells.append(cell)
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Median µs per request (min-max over the repeats); [n] = store calls per request.")
    return "\n".join(lines)


def calls_table(results: Results) -> str:
    """Store calls per request, by method, for every wsgisession store."""
    scenarios = SCENARIOS[1:]
    lines = ["| store | " + " | ".join(scenarios) + " |", "|---|" + "---|" * len(scenarios)]
    for row in results.rows:
        if row.family != "wsgisession" or row.skipped:
            continue
        cells = []
        for scenario in scenarios:
            calls = row.calls.get(scenario, {})
            text = " + ".join(f"{k} {v:g}" for k, v in sorted(calls.items())) or "none"
            trips = row.trips.get(scenario)
            if trips:
                text += (
                    " (round trips: "
                    + ", ".join(f"{k} {v:g}" for k, v in sorted(trips.items()))
                    + ")"
                )
            cells.append(text)
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_table(results: Results) -> str:
    """wsgisession / Beaker per scenario, for the pairs that do the same job."""
    pairs = [
        ("wsgisession:memory", "beaker:memory"),
        ("wsgisession:memory", "beaker:memory-signed"),
        ("wsgisession:sqlite", "beaker:file"),
        ("wsgisession:redis", "beaker:redis"),
        ("wsgisession:postgres", "beaker:redis"),
        ("wsgisession:cookie", "beaker:cookie"),
    ]
    scenarios = SCENARIOS[1:]
    lines = ["| wsgisession / Beaker | " + " | ".join(scenarios) + " |"]
    lines.append("|---|" + "---:|" * len(scenarios))
    for ours, theirs in pairs:
        a, b = results.row(ours), results.row(theirs)
        if a is None or b is None:
            continue
        cells = []
        for scenario in scenarios:
            x, y = a.timings.get(scenario), b.timings.get(scenario)
            cells.append(f"{x.median / y.median:.2f}x" if x and y else "—")
        lines.append(f"| {a.label} / {b.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floors_table(results: Results) -> str:
    lines = ["| floor | µs |", "|---|---:|"]
    for name, timing in results.floors.items():
        lines.append(f"| {name} | {timing.cell()} |")
    for name, reason in results.skipped_floors.items():
        lines.append(f"| {name} | skipped: {reason} |")
    return "\n".join(lines)
