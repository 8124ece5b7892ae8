"""The benchmark's verdicts: each target line says PASS or MISS from the medians it is given."""

from __future__ import annotations

from benchmarks.http import HttpResult
from benchmarks.inprocess import Results, Row, Timing
from benchmarks.targets import check

SCENARIOS = ("untouched", "new-write", "read", "write", "forged")


def _row(name: str, family: str, **medians: float) -> Row:
    timings = {s: Timing(medians.get(s, 1.0), 0.0, 0.0, 1) for s in SCENARIOS}
    row = Row(name, name, family, timings=timings)
    if family == "wsgisession":
        row.calls = {"forged": {}, "write": {"load": 1.0, "save": 1.0}}
        row.trips = {"write": {"load": 1.0, "save": 1.0}}
    return row


def _http(name: str, page: str, rps: float) -> HttpResult:
    return HttpResult(name, name, page, rps, 0.5, 1.0, 0, 0)


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
    assert report.splitlines()[-1] == "5 target(s) missed"


def test_targets_without_services_are_skipped_not_passed() -> None:
    results = Results(rows=[_row("wsgisession:memory", "wsgisession")])
    report = check(results, [])
    assert _line(report, "RedisStore write").startswith("SKIP")
    assert _line(report, "HTTP RedisStore").startswith("SKIP")
    assert report.splitlines()[-1] == "0 target(s) missed"
