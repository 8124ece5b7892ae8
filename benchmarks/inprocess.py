"""In-process benchmarks: each contender's WSGI app called directly with prebuilt environs.

No server and no sockets between the caller and the app: what is measured is the session layer
(and its store). Environs are copied before the clock starts, the garbage collector is off while
it runs, and every figure is the median over several repeats, with their min and max.
"""

from __future__ import annotations

import collections
import contextlib
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
    "bound-read": "/read",
    "bound-write": "/write",
}
#: The scenarios of a session bound to a user (``set_user``), each beside its unbound one; only
#: the wsgisession stores with a user index run them (:attr:`Contender.binds`).
BOUND = {"bound-read": "read", "bound-write": "write"}

CONTENDERS = [
    "floor:sqlite",
    "wsgisession:memory",
    "wsgisession:sqlite",
    "wsgisession:redis",
    "wsgisession:redis-client",
    "wsgisession:postgres",
    "wsgisession:cookie",
    "beaker:memory",
    "beaker:memory-signed",
    "beaker:file",
    "beaker:redis",
    "beaker:cookie",
    "flask:cookie",
    "flask:redis",
    "flask:sqlalchemy",
    "django:db",
    "django:cache",
    "django:django-redis",
    # The framework integrations, each beside its framework's alternatives (skipped, saying
    # why, until wsgisession.integrations.flask / .django are installed).
    "flask:wsgisession-memory",
    "flask:wsgisession-sqlite",
    "flask:wsgisession-redis",
    "django:wsgisession-redis",
    "django:wsgisession-postgres",
]
#: The framework of each family whose rows include the framework's own cost, and its bare row.
FRAMEWORK_BARE = {"flask": "flask:bare", "django": "django:bare"}

#: (ours, theirs) pairs of the ratio table and the chart: the same job, the same service.
PAIRS = [
    ("wsgisession:memory", "beaker:memory"),
    ("wsgisession:memory", "beaker:memory-signed"),
    ("wsgisession:sqlite", "beaker:file"),
    ("wsgisession:redis", "beaker:redis"),
    ("wsgisession:redis", "flask:redis"),
    ("wsgisession:redis", "django:cache"),
    ("wsgisession:redis", "django:django-redis"),
    ("wsgisession:postgres", "django:db"),
    ("wsgisession:postgres", "flask:sqlalchemy"),
    ("wsgisession:cookie", "beaker:cookie"),
    ("wsgisession:cookie", "flask:cookie"),
    ("flask:wsgisession-memory", "flask:cookie"),
    ("flask:wsgisession-sqlite", "flask:cookie"),
    ("flask:wsgisession-redis", "flask:redis"),
    ("django:wsgisession-redis", "django:cache"),
    ("django:wsgisession-redis", "django:django-redis"),
    ("django:wsgisession-postgres", "django:db"),
]
#: Each wsgisession store beside the bare floor of the same work, for reading the overheads,
#: and RedisStore's lean path beside the same store on a redis-py client handed in.
FLOOR_PAIRS = [
    ("wsgisession:sqlite", "floor:sqlite"),
    ("wsgisession:redis", "wsgisession:redis-client"),
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

    def session_cost(self, name: str, scenario: str) -> float | None:
        """The median of *name* on *scenario*, less its framework's own cost (Flask's, Django's)
        when it runs inside one: what the session layer costs, comparable across frameworks."""
        value = self.median(name, scenario)
        bare = FRAMEWORK_BARE.get(name.partition(":")[0])
        if value is None or bare is None or name == bare:
            return value
        own = self.median(bare, "bare")
        return None if own is None else value - own

    def ratio(self, ours: str, theirs: str, scenario: str) -> float | None:
        """session_cost(ours) / session_cost(theirs); None when either is missing or the
        denominator is under 1 µs (a framework peer's untouched page costs next to nothing)."""
        a, b = self.session_cost(ours, scenario), self.session_cost(theirs, scenario)
        if a is None or b is None or b < 1.0:
            return None
        return max(a, 0.0) / b


# Running ------------------------------------------------------------------------------------


def scenario_environs(contender: Contender) -> dict[str, Environ]:
    """The environ of each scenario for *contender*, with a freshly made 10-key session, and
    the bound scenarios' on a second one bound to a user when the contender can bind."""
    cookie = session_cookie(contender.app, "/setup")
    environs = {
        "untouched": environ_for("/untouched", cookie),
        "new-write": environ_for("/new"),
        "read": environ_for("/read", cookie),
        "write": environ_for("/write", cookie),
        "forged": environ_for("/read", forged_cookie(cookie)),
    }
    if contender.binds:
        bound = session_cookie(contender.app, "/setup-bound")
        environs.update({s: environ_for(PATHS[s], bound) for s in BOUND})
    return environs


def count_calls(contender: Contender, environs: Mapping[str, Environ], row: Row) -> None:
    """Fill in the store calls (and Redis round trips) per request of every scenario."""
    assert contender.counted is not None and contender.counter is not None
    counter = contender.counter
    requests = 20
    for scenario, environ in environs.items():
        # One request first: what a connection's set-up sends is not a round trip of a request.
        app_batch(contender.counted, environ)(1)
        counter.reset()
        counter.trips.clear()
        app_batch(contender.counted, environ)(requests)
        calls = collections.Counter(counter.calls)
        row.calls[scenario] = {k: v / requests for k, v in calls.items()}
        if contender.redis:
            row.trips[scenario] = {k: counter.trips[k] / calls[k] for k in calls}


@dataclass
class _Job:
    """One timed figure: a batch runner, where its median goes, and the hooks around it."""

    batch: Callable[[int], float]
    store: Callable[[Timing], None]
    label: str
    enter: Callable[[], None] | None = None
    leave: Callable[[], None] | None = None
    size: int = 0
    samples: list[float] = field(default_factory=list)

    def run(self, n: int) -> float:
        if self.enter is not None:
            self.enter()
        try:
            return self.batch(n)
        finally:
            if self.leave is not None:
                self.leave()


def interleave(jobs: list[_Job], repeats: int, budget: float, log: Callable[[str], None]) -> None:
    """Time every job once per round, *repeats* rounds, and store each one's Timing.

    Interleaved, so a shared machine that slows down for a while slows every contender alike,
    and the ratios of one run stay comparable.
    """
    for job in jobs:
        job.run(5)  # warm up: first-call costs (prepared statements, imports, connections)
        probe = max(job.run(20) / 20, 1e-8)
        job.size = int(min(max(budget / probe, 20), 20000))
    for round_ in range(repeats):
        log(f"  round {round_ + 1}/{repeats}")
        for job in jobs:
            job.samples.append(job.run(job.size) / job.size * 1e6)
    for job in jobs:
        values = job.samples
        job.store(Timing(statistics.median(values), min(values), max(values), job.size))


def _setter(target: dict[str, Timing], key: str) -> Callable[[Timing], None]:
    def store(timing: Timing) -> None:
        target[key] = timing

    return store


def _contender_jobs(
    name: str, ctx: Context, results: Results, live: list[Contender], log: Callable[[str], None]
) -> list[_Job]:
    """Build contender *name*, make its session, and return a job per scenario."""
    reason = missing(name)
    if reason is not None:
        log(f"  {name}: skipped ({reason})")
        results.rows.append(Row(name, name, name.split(":")[0], skipped=reason))
        return []
    contender = build(name, ctx)
    live.append(contender)
    row = Row(name, contender.label, contender.family)
    results.rows.append(row)
    if contender.enter is not None:
        contender.enter()
    try:
        if name in BARE:
            environs = {"bare": environ_for("/untouched")}
        else:
            environs = scenario_environs(contender)
            if contender.counted is not None:
                count_calls(contender, environs, row)
    finally:
        if contender.leave is not None:
            contender.leave()
    return [
        _Job(
            app_batch(contender.app, environ),
            _setter(row.timings, scenario),
            f"{name} {scenario}",
            contender.enter,
            contender.leave,
        )
        for scenario, environ in environs.items()
    ]


#: The rows measured on the bare scenario only: what the app, Flask and Django cost alone.
BARE = ["bare", "flask:bare", "django:bare"]


def run(
    ctx: Context,
    *,
    repeats: int = 7,
    budget: float = 0.05,
    contenders: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> Results:
    """Run every in-process benchmark and the floors, interleaved; return the results."""
    results = Results()
    live: list[Contender] = []
    jobs: list[_Job] = []
    closers: list[Callable[[], None]] = []
    try:
        chosen = contenders or CONTENDERS
        wanted = set(chosen)
        frameworks = {n.partition(":")[0] for n in chosen}
        log("in-process: building the contenders and their sessions")
        for name in BARE:
            family = name.partition(":")[0]
            if family in FRAMEWORK_BARE and family not in frameworks and name not in wanted:
                continue
            jobs += _contender_jobs(name, ctx, results, live, log)
        for name in chosen:
            if name not in BARE:
                jobs += _contender_jobs(name, ctx, results, live, log)
        jobs += floors(ctx, results, closers)
        log(f"in-process: {len(jobs)} figures, {repeats} interleaved rounds")
        interleave(jobs, repeats, budget, log)
    finally:
        for contender in live:
            contender.close()
        for close in closers:
            with contextlib.suppress(Exception):
                close()
    for row in results.rows:
        for scenario, timing in row.timings.items():
            log(f"  {row.label:<40} {scenario:<10} {timing.cell()} µs")
    return results


# Floors -----------------------------------------------------------------------------------

_VALUE = json.dumps(dict(SETUP_DATA), separators=(",", ":"))


def floors(ctx: Context, results: Results, closers: list[Callable[[], None]]) -> list[_Job]:
    """Jobs for the cost of the store operations alone, and of the pieces a request is made of.

    Each store floor reads the session's JSON record (about 300 B) and, for a write, decodes it,
    changes the counter, encodes it and writes it back: what any session write must do.
    """
    jobs: list[_Job] = []

    def add(name: str, step: Callable[[], object]) -> None:
        jobs.append(_Job(loop_batch(step), _setter(results.floors, name), name))

    value = _VALUE
    key = hashlib.sha256(secrets.token_bytes(32)).hexdigest()

    # sqlite3 get + upsert, the same statements as the floor app.
    conn = sqlite_floor_connection(os.path.join(ctx.root, "floor.db"))
    closers.append(conn.close)
    conn.execute(FLOOR_UPSERT, (key, value))

    # Two records of the same size taken in turn, as the counter changes on every write: an
    # upsert of the very same text would leave the page unchanged and write nothing.
    values = [json.dumps({**SETUP_DATA, "n": n}, separators=(",", ":")) for n in (0, 1)]
    turn = [0]

    def sqlite_step() -> None:
        conn.execute(FLOOR_SELECT, (key,)).fetchone()
        turn[0] ^= 1
        conn.execute(FLOOR_UPSERT, (key, values[turn[0]]))

    def sqlite_json_step() -> None:
        row = conn.execute(FLOOR_SELECT, (key,)).fetchone()
        data = json.loads(row[0])
        data["n"] = data.get("n", 0) + 1
        conn.execute(FLOOR_UPSERT, (key, json.dumps(data)))

    add("sqlite3 get+upsert (WAL)", sqlite_step)
    add(SQLITE_JSON_FLOOR, sqlite_json_step)

    reason = redis_available()
    if reason is None:
        import redis

        client = redis.Redis.from_url(ctx.redis_url)
        closers.append(client.close)
        rkey = f"{ctx.token}:floor"
        client.set(rkey, value)

        def redis_step() -> None:
            client.get(rkey)
            client.set(rkey, value)

        add("redis-py GET+SET", redis_step)
        add("redis-py GET", lambda: client.get(rkey))
        # The same two commands on one bare redis-py Connection, packed ahead of time: what
        # two round trips cost without redis-py's command layer and pool.
        raw = redis.Connection(**client.connection_pool.connection_kwargs)
        closers.append(raw.disconnect)
        get = raw.pack_command("GET", rkey)
        put = raw.pack_command("SET", rkey, value)

        def raw_step() -> None:
            raw.send_packed_command(get, check_health=False)
            raw.read_response()
            raw.send_packed_command(put, check_health=False)
            raw.read_response()

        def raw_get() -> None:
            raw.send_packed_command(get, check_health=False)
            raw.read_response()

        add(REDIS_RAW_FLOOR, raw_step)
        add(REDIS_RAW_READ_FLOOR, raw_get)
    else:
        for name in ("redis-py GET+SET", "redis-py GET", REDIS_RAW_FLOOR, REDIS_RAW_READ_FLOOR):
            results.skipped_floors[name] = reason

    reason = postgres_available()
    if reason is None:
        import psycopg

        table = ctx.table("floor")
        pg = psycopg.connect(ctx.postgres_dsn, autocommit=True)
        closers.append(pg.close)
        pg.execute(f'CREATE TABLE "{table}" (key text PRIMARY KEY, data text NOT NULL)')
        pg.execute(f'INSERT INTO "{table}" VALUES (%s, %s)', (key, value))
        pselect = f'SELECT data FROM "{table}" WHERE key = %s'
        pupdate = f'UPDATE "{table}" SET data = %s WHERE key = %s'

        def pg_read() -> None:
            row = pg.execute(pselect, (key,)).fetchone()
            assert row is not None
            json.loads(row[0])

        def pg_write() -> None:
            row = pg.execute(pselect, (key,)).fetchone()
            assert row is not None
            data = json.loads(row[0])
            data["n"] = data.get("n", 0) + 1
            pg.execute(pupdate, (json.dumps(data), key))

        add(PG_READ_FLOOR, pg_read)
        add(PG_WRITE_FLOOR, pg_write)
    else:
        for name in (PG_READ_FLOOR, PG_WRITE_FLOOR):
            results.skipped_floors[name] = reason

    # The pieces of a request, for reading the overheads.
    add("JSON dumps+loads (300 B)", lambda: json.loads(json.dumps(dict(SETUP_DATA))))
    secret = secrets.token_bytes(32)
    sid = secrets.token_urlsafe(32).encode()

    def hmac_step() -> None:
        sig = hmac.new(secret, sid, hashlib.sha256).digest()
        hmac.compare_digest(sig, hmac.new(secret, sid, hashlib.sha256).digest())

    add("HMAC-SHA256 sign+verify", hmac_step)
    from webob.cookies import make_cookie, parse_cookie

    header = f"wsgisession={sid.decode()}.{secrets.token_urlsafe(32)}"
    add("WebOb parse_cookie (1 cookie)", lambda: list(parse_cookie(header)))
    add(
        "WebOb make_cookie",
        lambda: make_cookie(
            "wsgisession", sid, max_age=1209600, path="/", httponly=True, samesite="Lax"
        ),
    )
    return jobs


SQLITE_JSON_FLOOR = "sqlite3 get+JSON+upsert (WAL)"
REDIS_RAW_FLOOR = "redis Connection, packed GET+SET"
REDIS_RAW_READ_FLOOR = "redis Connection, packed GET"
PG_READ_FLOOR = "psycopg SELECT + JSON"
PG_WRITE_FLOOR = "psycopg SELECT + UPDATE + JSON"


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


def bound_table(results: Results) -> str:
    """Each wsgisession store's read and write of a session bound to a user beside the same
    request unbound, and bound / unbound (1.00x: binding costs the request nothing)."""
    lines = ["| store | " + " | ".join(f"{u} | {b} | {b} / {u}" for b, u in BOUND.items()) + " |"]
    lines.append("|---|" + "---:|" * 3 * len(BOUND))
    for row in results.rows:
        if row.skipped or not any(s in row.timings for s in BOUND):
            continue
        cells = []
        for bound, unbound in BOUND.items():
            for scenario in (unbound, bound):
                timing = row.timings.get(scenario)
                cell = timing.cell() if timing is not None else "—"
                if timing is not None and scenario in row.calls:
                    cell += f" [{format_calls(row.calls[scenario])}]"
                cells.append(cell)
            a, b = results.median(row.name, bound), results.median(row.name, unbound)
            cells.append(ratio_cell(a / b if a is not None and b else None))
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Median µs per request (min-max); [n] = store calls per request. The bound session is "
        "another 10-key session, bound to a user with set_user() when it was made; the peers "
        "have no user binding and no row here."
    )
    return "\n".join(lines)


def ratio_cell(value: float | None, times: str = "x") -> str:
    """A ratio as a table cell: two decimals, ``<0.01x`` below that, ``—`` when missing."""
    if value is None:
        return "—"
    return f"<0.01{times}" if value < 0.005 else f"{value:.2f}{times}"


def ratio_table(results: Results) -> str:
    """wsgisession / its peers, per scenario, for the pairs that do the same job."""
    scenarios = SCENARIOS[1:]
    lines = ["| wsgisession / peer | " + " | ".join(scenarios) + " |"]
    lines.append("|---|" + "---:|" * len(scenarios))
    for ours, theirs in PAIRS + FLOOR_PAIRS:
        a, b = results.row(ours), results.row(theirs)
        if a is None or b is None:
            continue
        cells = [ratio_cell(results.ratio(ours, theirs, s)) for s in scenarios]
        lines.append(f"| {a.label} / {b.label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Below 1 is faster. Rows inside Flask or Django count the session layer alone: the "
        "median less that framework's own (its bare row), so a plain WSGI middleware and a "
        "framework's engine compare like for like. — : missing, or a peer's cost under 1 µs."
    )
    return "\n".join(lines)


def floors_table(results: Results) -> str:
    lines = ["| floor | µs |", "|---|---:|"]
    for name, timing in results.floors.items():
        lines.append(f"| {name} | {timing.cell()} |")
    for name, reason in results.skipped_floors.items():
        lines.append(f"| {name} | skipped: {reason} |")
    return "\n".join(lines)
