"""Django's session engines as contenders of ``make bench``, in the same process as the others.

Django is configured once per process (its settings are global): PostgreSQL, in a schema of
this run's own, as the default database with persistent connections (``CONN_MAX_AGE=None``);
Django's ``RedisCache`` as the default cache and django-redis as a second one, each keeping its
Redis connection pool for the life of the process, as a tuned deployment has them. Every
contender is Django's own WSGI handler with ``SessionMiddleware`` on one engine:

* ``django:bare``: no session middleware, what Django itself costs;
* ``django:db``: ``django.contrib.sessions.backends.db`` on PostgreSQL;
* ``django:cache``: ``django.contrib.sessions.backends.cache`` on Django's ``RedisCache``;
* ``django:django-redis``: the same engine on django-redis's ``RedisCache``;
* ``django:wsgisession-redis`` / ``django:wsgisession-postgres``: wsgisession's own engine
  (``wsgisession.integrations.django``) on a ``RedisStore`` / ``PostgresStore``, once that
  integration is installed; until then :func:`missing` says so and the run skips them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from .contenders import SECRET, SETUP_DATA, Context, WSGIApp

ENGINE = "wsgisession.integrations.django"
LABELS = {
    "bare": "Django, no session (bare)",
    "db": "Django db engine, PostgreSQL",
    "cache": "Django cache engine, RedisCache",
    "django-redis": "Django cache engine, django-redis",
    "wsgisession-redis": "wsgisession Django engine, RedisStore",
    "wsgisession-postgres": "wsgisession Django engine, PostgresStore",
}
#: The cache alias of each cache-engine contender.
CACHE_ALIASES = {"cache": "default", "django-redis": "django_redis"}

urlpatterns: list[Any] = []
_configured: list[Context] = []


def missing(kind: str) -> str | None:
    """Why the Django contender *kind* cannot run here, or None."""
    from .contenders import postgres_available, redis_available

    needs = ["django"]
    if kind == "django-redis":
        needs.append("django_redis")
    if kind.startswith("wsgisession-"):
        try:
            found = importlib.util.find_spec(ENGINE) is not None
        except ImportError:
            found = False
        if not found:
            return f"{ENGINE} cannot be imported (pip install django)"
    for module in needs:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (make bench installs the bench requirements)"
    # Django is configured with both services, so every contender needs both.
    return postgres_available() or redis_available()


def _views() -> list[Any]:
    from django.http import HttpResponse
    from django.urls import path

    def untouched(request: Any) -> Any:
        return HttpResponse(b"ok", content_type="text/plain")

    def read(request: Any) -> Any:
        request.session.get("k3")
        return HttpResponse(b"ok", content_type="text/plain")

    def write(request: Any) -> Any:
        request.session["n"] = request.session.get("n", 0) + 1
        return HttpResponse(b"ok", content_type="text/plain")

    def new(request: Any) -> Any:
        request.session["user"] = "alice"
        return HttpResponse(b"ok", content_type="text/plain")

    def setup(request: Any) -> Any:
        request.session.update(SETUP_DATA)
        request.session["n"] = 0
        return HttpResponse(b"ok", content_type="text/plain")

    return [
        path("untouched", untouched),
        path("read", read),
        path("write", write),
        path("new", new),
        path("setup", setup),
    ]


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


def configure(ctx: Context) -> None:
    """Configure Django once for this process, and create its session table in *ctx*'s schema."""
    if _configured:
        if _configured[0] is not ctx:
            raise RuntimeError("Django is configured once per process, for one Context")
        return
    import django
    from django.conf import settings

    schema = ctx.schema("django")
    settings.configure(
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                **_dsn_parts(ctx.postgres_dsn),
                "CONN_MAX_AGE": None,  # persistent connections, as a tuned deployment has
                "OPTIONS": {"options": f"-c search_path={schema}"},
            }
        },
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": ctx.redis_url,
                "KEY_PREFIX": f"{ctx.redis_prefix}django",
            },
            "django_redis": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": ctx.redis_url,
                "KEY_PREFIX": f"{ctx.redis_prefix}django-redis",
            },
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGGING_CONFIG=None,
    )
    django.setup()
    urlpatterns.extend(_views())
    from django.core.management import call_command

    call_command("migrate", "sessions", verbosity=0)
    ctx.closers.append(_close_connections)
    _configured.append(ctx)


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()


def _engine_module(kind: str) -> str:
    """The ``SESSION_ENGINE`` of *kind*: Django's own, or a module of this file's making."""
    if kind == "db":
        return "django.contrib.sessions.backends.db"
    if kind == "cache":
        return "django.contrib.sessions.backends.cache"
    if kind == "django-redis":
        return f"{__name__}.django_redis_engine"
    if kind.startswith("wsgisession-"):
        return ENGINE
    raise ValueError(f"unknown Django session engine {kind!r}")


def _install_django_redis_engine() -> None:
    """A ``SESSION_ENGINE`` module: Django's cache engine on the ``django_redis`` alias.

    Django's cache engine reads ``SESSION_CACHE_ALIAS`` at every request; this one takes its
    cache once per session object, exactly as the built-in does, from the other alias.
    """
    import sys
    import types

    name = f"{__name__}.django_redis_engine"
    if name in sys.modules:
        return
    from django.contrib.sessions.backends import cache
    from django.contrib.sessions.backends.base import SessionBase
    from django.core.cache import caches

    class SessionStore(cache.SessionStore):  # type: ignore[misc]
        def __init__(self, session_key: str | None = None) -> None:
            self._cache = caches["django_redis"]
            SessionBase.__init__(self, session_key)

    module = types.ModuleType(name)
    module.SessionStore = SessionStore  # type: ignore[attr-defined]
    sys.modules[name] = module


def handler(kind: str) -> WSGIApp:
    """Django's WSGI handler, with SessionMiddleware on *kind*'s engine (none for ``bare``)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    if kind == "bare":
        middleware: list[str] = []
        engine = "django.contrib.sessions.backends.db"
    else:
        middleware = ["django.contrib.sessions.middleware.SessionMiddleware"]
        engine = _engine_module(kind)
        if kind == "django-redis":
            _install_django_redis_engine()
    # The middleware reads SESSION_ENGINE once, when the handler loads it.
    with override_settings(MIDDLEWARE=middleware, SESSION_ENGINE=engine):
        return WSGIHandler()  # type: ignore[no-any-return]


def wsgisession_settings(kind: str, ctx: Context) -> tuple[Any, Callable[[], None]]:
    """The settings override that points wsgisession's engine at its store, and the closer.

    For ``django:wsgisession-*``: wsgisession's engine takes its store from
    ``WSGISESSION_STORE``, a global setting, so the override is enabled only while that
    contender runs (:attr:`Contender.enter` / :attr:`Contender.leave`).
    """
    from django.test import override_settings

    import wsgisession

    store_kind = kind.partition("-")[2]
    if store_kind == "redis":
        store = wsgisession.RedisStore(  # type: ignore[attr-defined]
            ctx.redis_url, prefix=f"{ctx.redis_prefix}django-ours:"
        )
    elif store_kind == "postgres":
        store = wsgisession.PostgresStore(  # type: ignore[attr-defined]
            ctx.postgres_dsn, table=ctx.table("django_ours")
        )
    else:
        raise ValueError(f"unknown wsgisession store {store_kind!r} for Django")
    return override_settings(WSGISESSION_STORE=store), store.close
