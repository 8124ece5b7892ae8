"""``python -m benchmarks.django_engine``: wsgisession's Django engine beside Django's own engines.

One run, in-process, through Django's own WSGI handler and ``SessionMiddleware``, the same views
and scenarios as ``make bench``:

* on Redis: the wsgisession engine on a ``RedisStore`` against Django's cache engine on Django's
  ``RedisCache``, the same server;
* on PostgreSQL: the wsgisession engine on a ``PostgresStore`` against Django's database engine
  with persistent connections (``CONN_MAX_AGE=None``, as a tuned deployment has it), the same
  server.

The store of the wsgisession engine is a setting, so the two pairs are measured one after the
other; within a pair the repeats are interleaved (every contender once per round), so a busy
machine slows them alike. It prints the median µs per request over Django's own cost (the same
handler with no session middleware) and the ratios of the whole-request medians, wsgisession's
engine over Django's (below 1 is faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .__main__ import machine
from .contenders import (
    SETUP_DATA,
    Context,
    WSGIApp,
    environ_for,
    forged_cookie,
    postgres_available,
    postgres_dsn,
    redis_available,
    redis_url,
    session_cookie,
)
from .inprocess import Timing, app_batch

SCENARIOS = ["untouched", "new-write", "read", "write", "forged"]
ENGINE = "wsgisession.integrations.django"
OURS_REDIS = "wsgisession engine, RedisStore"
CACHE = "Django cache engine, RedisCache"
OURS_POSTGRES = "wsgisession engine, PostgresStore"
DB = "Django db engine, persistent connections"


# The Django project: four views and a handler per session engine -------------------------------


def _views() -> list[Any]:
    from django.http import HttpResponse
    from django.urls import path

    def untouched(request: Any) -> Any:
        return HttpResponse(b"ok")

    def read(request: Any) -> Any:
        request.session.get("k3")
        return HttpResponse(b"ok")

    def write(request: Any) -> Any:
        request.session["n"] = request.session.get("n", 0) + 1
        return HttpResponse(b"ok")

    def new(request: Any) -> Any:
        request.session["user"] = "alice"
        return HttpResponse(b"ok")

    def setup(request: Any) -> Any:
        request.session.update(SETUP_DATA)
        request.session["n"] = 0
        return HttpResponse(b"ok")

    return [
        path("untouched", untouched),
        path("read", read),
        path("write", write),
        path("new", new),
        path("setup", setup),
    ]


urlpatterns: list[Any] = []


def configure(ctx: Context, schema: str) -> None:
    """Configure Django once: Redis as the default cache, PostgreSQL (in *schema*) as the DB."""
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="benchmark-secret-key-0123456789abcdef",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                **_dsn_parts(postgres_dsn()),
                "CONN_MAX_AGE": None,
                "OPTIONS": {"options": f"-c search_path={schema}"},
            }
        },
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url(),
                "KEY_PREFIX": f"{ctx.redis_prefix}django",
            }
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    urlpatterns.extend(_views())


def _dsn_parts(dsn: str) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(dsn)
    return {
        "NAME": parts.get("dbname", ""),
        "USER": parts.get("user", ""),
        "PASSWORD": parts.get("password", ""),
        "HOST": parts.get("host", ""),
        "PORT": parts.get("port", ""),
    }


def handler(engine: str | None) -> WSGIApp:
    """Django's WSGI handler with SessionMiddleware on *engine* (None: no session at all)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    middleware = [] if engine is None else ["django.contrib.sessions.middleware.SessionMiddleware"]
    with override_settings(MIDDLEWARE=middleware, SESSION_ENGINE=engine or ENGINE):
        return WSGIHandler()  # type: ignore[no-any-return]


def environs(app: WSGIApp) -> dict[str, dict[str, Any]]:
    """The environ of each scenario, with a freshly made 10-key session for *app*."""
    cookie = session_cookie(app, "/setup")
    return {
        "untouched": environ_for("/untouched", cookie),
        "new-write": environ_for("/new"),
        "read": environ_for("/read", cookie),
        "write": environ_for("/write", cookie),
        "forged": environ_for("/read", forged_cookie(cookie)),
    }


# Measuring ---------------------------------------------------------------------------------------


def interleaved(
    apps: dict[str, WSGIApp], repeats: int, budget: float
) -> dict[str, dict[str, Timing]]:
    """Time every (app, scenario) once per round, *repeats* rounds; the medians per app."""
    batches: dict[tuple[str, str], Callable[[int], float]] = {}
    for name, app in apps.items():
        scenario_environs = (
            {"untouched": environ_for("/untouched")} if name == "django" else environs(app)
        )
        for scenario, environ in scenario_environs.items():
            batches[name, scenario] = app_batch(app, environ)
    sizes = {}
    for key, batch in batches.items():
        batch(5)  # warm up: connections, prepared statements
        probe = max(batch(20) / 20, 1e-8)
        sizes[key] = int(min(max(budget / probe, 20), 20000))
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in batches}
    for _ in range(repeats):
        for key, batch in batches.items():
            samples[key].append(batch(sizes[key]) / sizes[key] * 1e6)
    timings: dict[str, dict[str, Timing]] = {name: {} for name in apps}
    for (name, scenario), values in samples.items():
        timings[name][scenario] = Timing(
            statistics.median(values), min(values), max(values), sizes[name, scenario]
        )
    return timings


def report(title: str, timings: dict[str, dict[str, Timing]], ours: str, theirs: str) -> str:
    """A Markdown table of µs over Django's own cost, and the ratio line of *ours* / *theirs*."""
    own = timings["django"]["untouched"].median
    lines = [
        f"{title} (Django's own cost, no session middleware: {own:.0f} µs; figures over it)",
        "",
        "| engine | " + " | ".join(SCENARIOS) + " |",
        "|---|" + "---:|" * len(SCENARIOS),
    ]
    for name in (ours, theirs):
        cells = [f"{timings[name][s].median - own:+.0f}" for s in SCENARIOS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ratios = [f"{timings[ours][s].median / timings[theirs][s].median:.2f}" for s in SCENARIOS]
    lines.append(f"| **{ours} / {theirs}** (whole request) | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


@contextmanager
def postgres_schema(ctx: Context) -> Iterator[str]:
    """A schema of this run's own for Django's session table, dropped at the end."""
    import psycopg
    from psycopg import sql

    schema = f"{ctx.token}_django"
    with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.django_engine")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per figure (7)")
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per repeat (0.05)")
    args = parser.parse_args(argv)
    for reason in (redis_available(), postgres_available()):
        if reason is not None:
            print(f"skipped: {reason}")
            return 1
    import wsgisession

    print(f"machine: {machine()}")
    ctx = Context()
    try:
        with postgres_schema(ctx) as schema:
            configure(ctx, schema)
            from django.core.management import call_command
            from django.test import override_settings

            call_command("migrate", "sessions", verbosity=0)
            redis_store = wsgisession.RedisStore(redis_url(), prefix=f"{ctx.redis_prefix}ours:")  # type: ignore[attr-defined]
            postgres_store = wsgisession.PostgresStore(postgres_dsn(), ctx.table("django_engine"))  # type: ignore[attr-defined]
            try:
                with override_settings(WSGISESSION_STORE=redis_store):
                    on_redis = interleaved(
                        {
                            "django": handler(None),
                            OURS_REDIS: handler(ENGINE),
                            CACHE: handler("django.contrib.sessions.backends.cache"),
                        },
                        args.repeats,
                        args.budget,
                    )
                print(report("On Redis", on_redis, OURS_REDIS, CACHE))
                print()
                with override_settings(WSGISESSION_STORE=postgres_store):
                    on_postgres = interleaved(
                        {
                            "django": handler(None),
                            OURS_POSTGRES: handler(ENGINE),
                            DB: handler("django.contrib.sessions.backends.db"),
                        },
                        args.repeats,
                        args.budget,
                    )
                print(report("On PostgreSQL", on_postgres, OURS_POSTGRES, DB))
                print("\nRatios below 1: wsgisession's engine is faster.")
            finally:
                redis_store.close()
                postgres_store.close()
    finally:
        ctx.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
