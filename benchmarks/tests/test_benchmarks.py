"""The benchmark's verdicts: each target line says PASS or MISS from the medians it is given."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.callgrind import Counts
from benchmarks.http import HttpResult
from benchmarks.inprocess import Results, Row, Timing
from benchmarks.targets import check

ROOT = Path(__file__).resolve().parents[2]

SCENARIOS = ("untouched", "new-write", "read", "write", "forged")


def _row(name: str, family: str, **medians: float) -> Row:
    timings = {s: Timing(medians.get(s, 1.0), 0.0, 0.0, 1) for s in SCENARIOS}
    row = Row(name, name, family, timings=timings)
    if family == "wsgisession":
        row.calls = {"forged": {}, "write": {"load": 1.0, "save": 1.0}}
        row.trips = {"write": {"load": 1.0, "save": 1.0}}
    return row


def _http(name: str, page: str, rps: float, mode: str = "sync") -> HttpResult:
    return HttpResult(name, name, page, rps, 0.5, 1.0, 0, 0, mode)


def _line(report: str, start: str) -> str:
    return next(line for line in report.splitlines() if start in line)


def test_targets_pass_and_miss_from_the_medians() -> None:
    results = Results(
        rows=[
            _row("wsgisession:memory", "wsgisession", read=9.0, write=11.0, forged=4.0),
            _row("wsgisession:sqlite", "wsgisession", write=40.0, forged=9.0),
            _row("wsgisession:redis", "wsgisession", write=230.0, forged=4.0),
            _row("beaker:memory", "beaker", read=20.0, write=21.0),
            _row("beaker:redis", "beaker", write=300.0),
        ],
        floors={
            "sqlite3 get+upsert (WAL)": Timing(12.0, 0, 0, 1),
            "JSON dumps+loads (300 B)": Timing(5.0, 0, 0, 1),
            "redis-py GET+SET": Timing(200.0, 0, 0, 1),
        },
    )
    http = [
        _http("bare", "bare", 10_000),
        _http("floor:sqlite", "write", 5_500),
        _http("wsgisession:sqlite", "write", 5_000),
        _http("beaker:file", "write", 2_000),
        _http("wsgisession:redis", "write", 3_000),
        _http("beaker:redis", "write", 2_900),
    ]
    report = check(results, http)

    assert _line(report, "MemoryStore read").startswith("PASS")  # 9 <= 0.5 x 20
    assert _line(report, "MemoryStore write").startswith("MISS")  # 11 > 0.5 x 21
    sqlite = _line(report, "SqliteStore write <= sqlite3 floor")
    assert sqlite.startswith("MISS") and "(+28.0)" in sqlite
    assert "a whole MemoryStore write 11.0" in sqlite and "JSON dumps+loads 5.0" in sqlite
    redis = _line(report, "RedisStore write <= 0.8x")
    assert redis.startswith("PASS") and "0.77x" in redis and "GET+SET) 200 µs" in redis
    assert _line(report, "1 round trip to load").startswith("PASS")
    assert _line(report, "forged <= 8 µs and 0 store calls: wsgisession:sqlite").startswith("MISS")
    assert _line(report, "forged <= 8 µs and 0 store calls: wsgisession:redis").startswith("PASS")
    file_ratio = _line(report, "2.5x Beaker file")
    assert file_ratio.startswith("PASS") and "sqlite3 floor 2.75x" in file_ratio
    bare_share = _line(report, "70% of bare")
    assert bare_share.startswith("MISS") and "= 50%" in bare_share and "floor 55%" in bare_share
    assert _line(report, "HTTP RedisStore").startswith("MISS")  # 3000 < 1.2 x 2900
    issue6 = report.split("Issue 6", 1)[1]
    assert sum(line.startswith("MISS") for line in issue6.splitlines()) == 5


def test_targets_without_services_are_skipped_not_passed() -> None:
    results = Results(rows=[_row("wsgisession:memory", "wsgisession")])
    report = check(results, [])
    assert _line(report, "RedisStore write <= 0.8x").startswith("SKIP")
    assert _line(report, "RedisStore write / Beaker ext:redis").startswith("SKIP")
    assert _line(report, "Flask integration write").startswith("SKIP")
    assert _line(report, "(instructions)").startswith("SKIP")
    assert _line(report, "HTTP keep-alive: MemoryStore").startswith("SKIP")
    assert _line(report, "HTTP RedisStore").startswith("SKIP")
    assert report.splitlines()[-1] == "0 target(s) missed"


def _timing(median: float) -> Timing:
    return Timing(median, 0.0, 0.0, 1)


def test_issue_18_targets_with_their_bounds() -> None:
    """Every issue 18 line says PASS or MISS from the medians, with the floor that bounds it."""
    results = Results(
        rows=[
            _row("wsgisession:memory", "wsgisession", read=8.0, write=10.0),
            _row("wsgisession:sqlite", "wsgisession", write=30.0),
            _row("wsgisession:redis", "wsgisession", read=90.0, write=150.0),
            _row("wsgisession:postgres", "wsgisession", read=200.0, write=450.0),
            _row("beaker:memory", "beaker", read=20.0, write=20.0),
            _row("beaker:file", "beaker", write=400.0),
            _row("beaker:redis", "beaker", read=200.0, write=220.0),
            Row("django:bare", "django:bare", "django", timings={"bare": _timing(60.0)}),
            _row("django:cache", "django", write=400.0),
            _row("django:django-redis", "django", write=340.0),
            _row("django:db", "django", write=1060.0),
            _row("django:wsgisession-redis", "django", write=200.0),
            Row("flask:bare", "flask:bare", "flask", timings={"bare": _timing(40.0)}),
            _row("flask:redis", "flask", write=340.0),
        ],
        floors={
            "redis Connection, packed GET+SET": _timing(66.0),
            "redis Connection, packed GET": _timing(33.0),
            "psycopg SELECT + JSON": _timing(150.0),
            "psycopg SELECT + UPDATE + JSON": _timing(400.0),
            "sqlite3 get+JSON+upsert (WAL)": _timing(20.0),
        },
    )
    http = [
        _http("bare", "bare", 20_000, "keep-alive"),
        _http("floor:sqlite", "write", 10_000, "keep-alive"),
        _http("wsgisession:sqlite", "write", 9_500, "keep-alive"),
        _http("wsgisession:memory", "untouched", 19_000, "keep-alive"),
        _http("wsgisession:memory", "write", 14_000, "keep-alive"),
    ]
    counts = Counts(
        per_request={
            "wsgisession:sqlite": {"write": 300_000.0},
            "floor:sqlite": {"write": 180_000.0},
            "wsgisession:memory": {"write": 100_000.0},
        }
    )
    report = check(results, http, counts)

    redis_write = _line(report, "RedisStore write / Beaker ext:redis")
    assert redis_write.startswith("PASS") and "= 0.68x" in redis_write  # 150 / 220
    assert "[bound: redis Connection, packed GET+SET 66.0 µs = 0.30x]" in redis_write
    assert _line(report, "RedisStore read / Beaker").startswith("PASS")  # 0.45x
    # Django's own 60 µs is taken off: 150 / (400 - 60) = 0.44x, 150 / (340 - 60) = 0.54x.
    assert _line(report, "RedisStore write / Django cache engine").startswith("PASS")
    django_redis = _line(report, "RedisStore write / django-redis")
    assert django_redis.startswith("MISS") and "= 0.54x" in django_redis
    pg_write = _line(report, "PostgresStore write / bare psycopg")
    assert pg_write.startswith("MISS") and "= 1.12x" in pg_write  # 450 / 400
    assert "a whole MemoryStore write (10.0 µs) would be 1.02x" in pg_write
    assert _line(report, "PostgresStore read / bare psycopg").startswith("PASS")  # 1.33x
    assert _line(report, "PostgresStore write / Django db").startswith("PASS")  # 450 / 1000
    assert _line(report, "MemoryStore read / Beaker memory <= 0.45x").startswith("PASS")
    assert _line(report, "MemoryStore write / Beaker memory <= 0.45x").startswith("MISS")
    sqlite_file = _line(report, "SqliteStore write / Beaker file")
    assert sqlite_file.startswith("PASS") and "= 0.05x]" in sqlite_file  # floor 20 / 400
    instructions = _line(report, "(instructions)")
    assert instructions.startswith("MISS") and "= 1.67x" in instructions
    assert "(100,000) would be 1.56x" in instructions
    assert _line(report, "Flask integration write").startswith("SKIP")
    django_engine = _line(report, "Django engine write / Django cache")
    assert django_engine.startswith("PASS")  # (200 - 60) / (400 - 60) = 0.41x
    # The same store through the WSGI middleware: 150 / 340 of the peer's session cost.
    assert "the store alone, through the WSGI middleware, 150 µs = 0.44x" in django_engine
    assert _line(report, "keep-alive: SqliteStore").startswith("PASS")  # 95 %
    memory = _line(report, "keep-alive: MemoryStore")
    assert memory.startswith("MISS") and "= 70%" in memory and "untouched is 95%" in memory


def test_bound_scenarios_run_beside_the_unbound_on_a_store_and_skip_a_peer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session bound to a user is read and written in-process and in the callgrind child,
    the table prints bound beside unbound with the ratio, and a peer has no bound row."""
    from benchmarks import callgrind, inprocess
    from benchmarks.contenders import Context, build

    ctx = Context()
    try:
        logs: list[str] = []
        results = inprocess.run(
            ctx,
            repeats=1,
            budget=0.001,
            contenders=["wsgisession:memory", "flask:cookie"],
            log=logs.append,
        )
        ours = results.row("wsgisession:memory")
        peer = results.row("flask:cookie")
        assert ours is not None and peer is not None
        assert set(inprocess.BOUND) <= set(ours.timings)
        assert not set(inprocess.BOUND) & set(peer.timings)
        # The bound write loads and saves once, as the unbound one does: no extra store call.
        assert ours.calls["bound-write"] == ours.calls["write"] == {"load": 1.0, "save": 1.0}
        table = inprocess.bound_table(results)
        assert "| store | read | bound-read | bound-read / read |" in table
        row = next(line for line in table.splitlines() if line.startswith("| wsgisession"))
        assert row.count("x |") == 2 and "Flask" not in table

        # The callgrind child serves the bound scenario (here without valgrind), and a peer
        # asked only for bound scenarios is skipped, saying why, before any child runs.
        assert not build("flask:cookie", ctx).binds
        for name, value in ctx.env().items():
            monkeypatch.setenv(name, value)
        callgrind.worker("wsgisession:memory", "bound-write", 5)
        with pytest.raises(KeyError):
            callgrind.worker("flask:cookie", "bound-write", 5)
        counts = callgrind.run(ctx, {"flask:cookie": ["bound-read"]}, log=logs.append)
        assert counts.per_request == {}
        assert "flask:cookie" in counts.skipped
    finally:
        ctx.cleanup()


def test_callgrind_bound_table_prints_the_ratio() -> None:
    from benchmarks import callgrind

    counts = Counts(
        per_request={
            "wsgisession:memory": {"read": 1000.0, "bound-read": 1010.0, "write": 2000.0},
            "flask:cookie": {"read": 3000.0},
        },
        labels={"wsgisession:memory": "wsgisession MemoryStore"},
    )
    assert callgrind.has_bound(counts)
    table = callgrind.bound_table(counts)
    assert table.splitlines()[0] == "| store | read | bound-read | bound-read / read |"
    assert table.splitlines()[2] == "| wsgisession MemoryStore | 1,000 | 1,010 | 1.010x |"
    assert "flask" not in table
    assert not callgrind.has_bound(Counts(per_request={"flask:cookie": {"read": 1.0}}))


def test_each_framework_integration_is_measured_beside_its_frameworks_own() -> None:
    """make bench times the Flask integration beside Flask's cookie session and Flask-Session
    Redis, and the Django engine beside Django's cache and db engines, on the same servers;
    the ratio table has a row for each pair (figures not judged: one tiny round). In a child
    process, as make bench runs: Django is configured once per process. Redis and PostgreSQL
    come from WSGISESSION_REDIS_URL and WSGISESSION_POSTGRES_DSN (the machine's own by
    default): a contender skipped for a missing server fails here. Flask-Session comes with
    make bench's own packages (the bench group), not make test's: its pair runs when it is
    installed."""
    names = [
        "flask:cookie",
        "flask:wsgisession-memory",
        "flask:wsgisession-sqlite",
        "flask:wsgisession-redis",
        "django:cache",
        "django:db",
        "django:wsgisession-redis",
        "django:wsgisession-postgres",
    ]
    pairs = [
        "| wsgisession Flask, MemoryStore / Flask cookie session |",
        "| wsgisession Flask, SqliteStore / Flask cookie session |",
        "| wsgisession Django engine, RedisStore / Django cache engine, RedisCache |",
        "| wsgisession Django engine, PostgresStore / Django db engine, PostgreSQL |",
    ]
    if importlib.util.find_spec("flask_session") is not None:
        names.append("flask:redis")
        pairs.append("| wsgisession Flask, RedisStore / Flask-Session Redis |")
    options = ["--no-http", "--no-callgrind", "--chart", "", "--repeats", "1", "--budget", "0.001"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *options, "--only", *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for name in names:
        assert f"{name}: skipped" not in done.stdout, done.stdout
    for pair in pairs:
        assert pair in done.stdout, done.stdout
