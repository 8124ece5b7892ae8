"""Scale: load and save latency with 1k, 100k and 1M stored sessions; a bounded MemoryStore
under a flood of new sessions; purging a million expired rows while requests go on.

Populations are bulk-copied from one record the store itself wrote (SQL ``INSERT … SELECT``
for SQLite and PostgreSQL, pipelined ``RESTORE`` for Redis), so what is measured afterwards is
the store's own format. Everything goes under this run's table names and key prefix, and is
removed at the end.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import wsgisession
from wsgisession import MemoryStore, SqliteStore, Store
from wsgisession.records import Changes

from .contenders import SETUP_DATA, Context, postgres_available, redis_available

SIZES = (1_000, 100_000, 1_000_000)
PROBES = 200  # live sessions probed at each size
OPS = 2000  # load and save calls timed at each size


def _key() -> str:
    return secrets.token_hex(32)


def _data() -> dict[str, Any]:
    return {**SETUP_DATA, "n": 0}


# Bulk populations -------------------------------------------------------------------------


def _grow_sqlite(store: SqliteStore, count: int, expires: float, now: float) -> None:
    """Add *count* copies of one record the store wrote, each under a fresh random key."""
    template = _key()
    store.create(template, _data(), {"created": now}, expires, now)
    conn = sqlite3.connect(store.path, isolation_level=None)
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({store.table})")]
    chosen = ", ".join(
        "lower(hex(randomblob(32)))" if c == "key" else "?" if c == "expires" else c
        for c in columns
    )
    conn.execute("BEGIN")
    conn.execute(
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        f"INSERT INTO {store.table} ({', '.join(columns)}) "
        f"SELECT {chosen} FROM n, (SELECT * FROM {store.table} WHERE key = ?)",
        (count, expires, template),
    )
    conn.execute("COMMIT")
    conn.close()
    store.delete(template)


def _grow_postgres(store: Any, dsn: str, count: int, expires: float, now: float) -> None:
    import psycopg

    template = _key()
    store.create(template, _data(), {"created": now}, expires, now)
    table = store.table
    with psycopg.connect(dsn, autocommit=True) as conn:
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
        ]
        chosen = ", ".join(
            "md5(random()::text) || md5(random()::text)"
            if c == "key"
            else "%(expires)s"
            if c == "expires"
            else f't."{c}"'
            for c in columns
        )
        quoted = ", ".join(f'"{c}"' for c in columns)
        step = 200_000
        for start in range(0, count, step):
            conn.execute(
                f'INSERT INTO "{table}" ({quoted}) SELECT {chosen} '
                f'FROM generate_series(1, %(n)s), (SELECT * FROM "{table}" WHERE key = %(t)s) t',
                {"n": min(step, count - start), "expires": expires, "t": template},
            )
        conn.execute(f'ANALYZE "{table}"')
    store.delete(template)


def _grow_redis(store: Any, url: str, count: int, expires: float, now: float) -> None:
    import redis

    template = _key()
    store.create(template, _data(), {"created": now}, expires, now)
    client = redis.Redis.from_url(url)
    payload = client.dump(store.prefix + template)
    ttl = max(int((expires - now) * 1000), 1000) + 600_000
    pipe = client.pipeline(transaction=False)
    for index in range(count):
        pipe.restore(store.prefix + _key(), ttl, payload)
        if index % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    client.close()
    store.delete(template)


# Measurements -----------------------------------------------------------------------------


@dataclass
class Latency:
    median_us: float
    p99_us: float

    def cell(self) -> str:
        return f"{self.median_us:.0f} / {self.p99_us:.0f}"


def _latency(samples: list[float]) -> Latency:
    samples = sorted(samples)
    return Latency(statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99) - 1] * 1e6)


def _probe(store: Store, keys: list[str], now: float) -> tuple[Latency, Latency]:
    """Time load and save (one key changed) on random live sessions."""
    loads, saves = [], []
    for index in range(OPS):
        key = keys[(index * 7919) % len(keys)]
        start = time.perf_counter()
        record = store.load(key, now)
        middle = time.perf_counter()
        assert record is not None, "a probe session vanished"
        value = record.data.get("n", 0) + 1
        data = dict(record.data, n=value)
        store.save(key, Changes(updates={"n": value}, loaded=record, result=data), now)
        end = time.perf_counter()
        loads.append(middle - start)
        saves.append(end - middle)
    return _latency(loads), _latency(saves)


def _stores(ctx: Context) -> Iterator[tuple[str, Store, Callable[[int, float, float], None]]]:
    sqlite_store = SqliteStore(os.path.join(ctx.root, "scale.db"), purge_every=0)
    yield (
        "SqliteStore",
        sqlite_store,
        lambda n, expires, now: _grow_sqlite(sqlite_store, n, expires, now),
    )
    if hasattr(wsgisession, "RedisStore") and redis_available() is None:
        redis_store = wsgisession.RedisStore(ctx.redis_url, prefix=f"{ctx.token}:scale:")
        yield (
            "RedisStore",
            redis_store,
            lambda n, expires, now: _grow_redis(redis_store, ctx.redis_url, n, expires, now),
        )
    if hasattr(wsgisession, "PostgresStore") and postgres_available() is None:
        pg_store = wsgisession.PostgresStore(ctx.postgres_dsn, table=ctx.table("scale"))
        yield (
            "PostgresStore",
            pg_store,
            lambda n, expires, now: _grow_postgres(pg_store, ctx.postgres_dsn, n, expires, now),
        )


def flat_latency(ctx: Context, sizes: tuple[int, ...], log: Callable[[str], None]) -> str:
    lines = [
        "| store | stored sessions | load µs (median / p99) | save µs (median / p99) "
        "| bulk fill s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, store, grow in _stores(ctx):
        now = time.time()
        expires = now + 3600
        keys = [_key() for _ in range(PROBES)]
        for key in keys:
            store.create(key, _data(), {"created": now}, expires, now)
        have = PROBES
        try:
            for size in sizes:
                started = time.perf_counter()
                if size > have:
                    grow(size - have, expires, now)
                    have = size
                filled = time.perf_counter() - started
                _probe(store, keys, now)  # warm caches and prepared statements
                load, save = _probe(store, keys, now)
                log(f"  {name} {size:>9,}: load {load.cell()} µs, save {save.cell()} µs")
                lines.append(
                    f"| {name} | {size:,} | {load.cell()} | {save.cell()} | {filled:.1f} |"
                )
        finally:
            store.close()
    return "\n".join(lines)


def memory_flood(count: int, bound: int, log: Callable[[str], None]) -> str:
    """Create *count* sessions in a MemoryStore bounded to *bound*; report the most it held."""
    store = MemoryStore(max_entries=bound)
    now = time.time()
    data = _data()
    meta = {"created": now}
    most = 0
    started = time.perf_counter()
    for index in range(count):
        store.create(secrets.token_hex(32), data, meta, now + 3600, now)
        if index % 1000 == 0:
            most = max(most, len(store))
    most = max(most, len(store))
    seconds = time.perf_counter() - started
    verdict = "PASS" if most <= bound else "MISS"
    line = (
        f"{verdict}  MemoryStore(max_entries={bound:,}) under {count:,} new sessions held at "
        f"most {most:,} ({seconds:.1f} s, {seconds / count * 1e6:.1f} µs per create)"
    )
    log("  " + line)
    return line


def purge_pause(ctx: Context, expired: int, log: Callable[[str], None]) -> str:
    """Purge *expired* rows while another thread loads and saves a live session."""
    lines = [
        "| store | expired rows | purge s | deleted | requests during purge | "
        "median µs | p99 µs | longest µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, store, grow in _stores(ctx):
        if name == "RedisStore":
            continue  # Redis ends expired keys itself (native TTL); nothing to batch
        now = time.time()
        live = _key()
        store.create(live, _data(), {"created": now}, now + 3600, now)
        grow(expired, now - 60, now - 120)
        latencies: list[float] = []
        stop = threading.Event()

        def requests(
            store: Store = store,
            live: str = live,
            stop: threading.Event = stop,
            latencies: list[float] = latencies,
        ) -> None:
            while not stop.is_set():
                start = time.perf_counter()
                record = store.load(live, time.time())
                assert record is not None
                value = record.data.get("n", 0) + 1
                changes = Changes(
                    updates={"n": value}, loaded=record, result=dict(record.data, n=value)
                )
                store.save(live, changes, time.time())
                latencies.append(time.perf_counter() - start)

        worker = threading.Thread(target=requests, daemon=True)
        worker.start()
        time.sleep(0.2)
        before = len(latencies)
        started = time.perf_counter()
        deleted = store.purge(time.time())
        seconds = time.perf_counter() - started
        during = latencies[before:]
        stop.set()
        worker.join()
        store.close()
        if not during:
            during = [seconds]
        median = statistics.median(during) * 1e6
        p99 = sorted(during)[max(int(len(during) * 0.99) - 1, 0)] * 1e6
        longest = max(during) * 1e6
        log(
            f"  {name}: purged {deleted:,} in {seconds:.1f} s; {len(during):,} requests "
            f"meanwhile, median {median:.0f} µs, longest {longest:,.0f} µs"
        )
        lines.append(
            f"| {name} | {expired:,} | {seconds:.1f} | {deleted:,} | {len(during):,} | "
            f"{median:.0f} | {p99:,.0f} | {longest:,.0f} |"
        )
    return "\n".join(lines)


def run(ctx: Context, largest: int = 1_000_000, log: Callable[[str], None] = print) -> None:
    sizes = tuple(size for size in SIZES if size <= largest) or (largest,)
    log(f"scale: populations {', '.join(f'{s:,}' for s in sizes)}")
    latency = flat_latency(ctx, sizes, log)
    log("scale: bounded MemoryStore flood")
    flood = memory_flood(largest, 10_000, log)
    log("scale: purge of expired rows")
    purge = purge_pause(ctx, largest, log)
    print("\n## Load and save with many stored sessions\n")
    print(latency)
    print("\n## Bounded MemoryStore under a flood\n")
    print(flood)
    print("\n## Purging expired rows while requests go on\n")
    print(purge)
