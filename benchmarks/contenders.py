"""The contenders: one application logic, wrapped by wsgisession, Beaker or Flask.

Every contender serves the same four pages, so the only difference measured is the session
layer:

* ``/untouched`` never touches the session;
* ``/new`` sets one key (a new session when no cookie came);
* ``/read`` reads one key (``k3``) of the 10-key session made by ``/setup``;
* ``/write`` increments a counter (``n``);
* ``/setup`` fills a session with ten keys of about 300 bytes in all;
* ``/setup-bound`` does the same and binds the session to a user (``set_user``), for the
  bound scenarios of the wsgisession stores that keep a user index.

A :class:`Context` holds what the contenders of one run share (a temporary folder, a unique
key prefix and table name for the shared Redis and PostgreSQL) and cleans all of it up.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import wsgisession
from wsgisession import SessionMiddleware, Store, testing

_T = TypeVar("_T")
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: The ten keys of the session that ``read`` reads from (about 300 bytes of JSON).
SETUP_DATA: Mapping[str, Any] = {f"k{i}": f"value-{i}-" + "x" * 14 for i in range(10)}
SECRET = "benchmark-secret-key-0123456789abcdef"
BODY = b"ok"
#: The user the bound scenarios' session belongs to.
BENCH_USER = "bench-user-1"

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def make_logic(get: Callable[[Environ], Any], save: Callable[[Any], None]) -> WSGIApp:
    """Return the benchmark application, reaching its session through *get* and *save*."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/read":
            get(environ).get("k3")
        elif path == "/write":
            session = get(environ)
            session["n"] = session.get("n", 0) + 1
            save(session)
        elif path == "/new":
            session = get(environ)
            session["user"] = "alice"
            save(session)
        elif path == "/setup" or path == "/setup-bound":
            session = get(environ)
            session.update(SETUP_DATA)
            session["n"] = 0
            if path == "/setup-bound":
                session.set_user(BENCH_USER)
            save(session)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [BODY]

    return app


def _no_save(session: Any) -> None:
    pass


def _beaker_save(session: Any) -> None:
    session.save()


PLAIN_APP = make_logic(lambda environ: {}, _no_save)


# Services ---------------------------------------------------------------------------------


def redis_url() -> str:
    return os.environ.get("WSGISESSION_REDIS_URL", DEFAULT_REDIS_URL)


def postgres_dsn() -> str:
    return os.environ.get("WSGISESSION_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)


def redis_available() -> str | None:
    """Return None when Redis answers, else why not."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (pip install 'sessions-wsgi[redis]')"
    try:
        client = redis.Redis.from_url(redis_url(), socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"Redis at {redis_url()} does not answer ({exc})"
    return None


def postgres_available() -> str | None:
    """Return None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'sessions-wsgi[postgres]')"
    try:
        with psycopg.connect(postgres_dsn(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {postgres_dsn()} does not answer ({exc})"
    return None


class RoundTrips:
    """Counts the packets redis-py sends: one per command, one per pipeline."""

    count = 0


def counting_redis_client(url: str) -> Any:
    """A redis-py client whose connections count their round trips in :class:`RoundTrips`."""
    import redis

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            RoundTrips.count += 1
            super().send_packed_command(command, check_health)

    pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection)
    return redis.Redis(connection_pool=pool)


@dataclass
class Context:
    """What the contenders of one run share, and everything to clean up afterwards."""

    root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="wsgisession-bench-"))
    token: str = field(default_factory=lambda: "wsbench" + secrets.token_hex(4))
    redis_url: str = field(default_factory=redis_url)
    postgres_dsn: str = field(default_factory=postgres_dsn)
    tables: set[str] = field(default_factory=set)
    #: PostgreSQL schemas of this run (Django's session table lives in one), dropped at the end.
    schemas: set[str] = field(default_factory=set)
    #: Called first by :meth:`cleanup`, e.g. to close connections that hold a schema.
    closers: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def from_env(cls) -> Context:
        """The context a gunicorn worker gets from the benchmark that started it."""
        return cls(root=os.environ["BENCH_ROOT"], token=os.environ["BENCH_TOKEN"])

    def env(self) -> dict[str, str]:
        return {"BENCH_ROOT": self.root, "BENCH_TOKEN": self.token}

    @property
    def redis_prefix(self) -> str:
        return f"{self.token}:"

    def table(self, suffix: str) -> str:
        name = f"{self.token}_{suffix}"
        self.tables.add(name)
        return name

    def schema(self, suffix: str) -> str:
        """Create a PostgreSQL schema of this run's own, dropped by :meth:`cleanup`."""
        import psycopg
        from psycopg import sql

        name = f"{self.token}_{suffix}"
        with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
        self.schemas.add(name)
        return name

    def cleanup(self) -> None:
        """Delete every key, table and file this run made in the shared services."""
        for close in self.closers:
            # Cleaning up must go on whatever one closer says.
            with contextlib.suppress(Exception):
                close()
        if redis_available() is None:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            for pattern in (f"{self.token}*", f"beaker_cache:{self.token}*"):
                batch = []
                for key in client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        client.delete(*batch)
                        batch = []
                if batch:
                    client.delete(*batch)
            client.close()
        if postgres_available() is None:
            import psycopg

            with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT tablename FROM pg_tables WHERE tablename LIKE %s",
                    (self.token.lower() + "%",),
                ).fetchall()
                for (name,) in rows:
                    conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                # Child processes (callgrind, gunicorn) make schemas of the run's token too.
                schemas = conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                    (self.token.lower() + "%",),
                ).fetchall()
                for name in self.schemas | {row[0] for row in schemas}:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        shutil.rmtree(self.root, ignore_errors=True)


# The contenders -----------------------------------------------------------------------------


class CountingStore(testing.CountingStore):
    """The test kit's counting store, also counting the Redis round trips of each call."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        #: Redis round trips per method name.
        self.trips: dict[str, int] = {}

    def record(self, name: str, call: Callable[[], _T]) -> _T:
        before = RoundTrips.count
        try:
            return super().record(name, call)
        finally:
            self.trips[name] = self.trips.get(name, 0) + RoundTrips.count - before


@dataclass
class Contender:
    """One session layer around the benchmark application."""

    name: str
    label: str
    family: str  # "wsgisession", "beaker", "flask", "django", "pyramid", "floor" or "bare"
    app: WSGIApp
    #: For wsgisession: the same middleware over a CountingStore, for the calls column.
    counted: WSGIApp | None = None
    counter: CountingStore | None = None
    store: Any = None
    #: True when the store is Redis, so the round trips are counted too.
    redis: bool = False
    closers: list[Callable[[], None]] = field(default_factory=list)
    #: Called before and after each timed batch, outside the clock: a contender whose set-up is
    #: process-wide (a Django setting) switches it on only while it runs.
    enter: Callable[[], None] | None = None
    leave: Callable[[], None] | None = None
    #: True when the session can be bound to a user (a wsgisession store with a user index),
    #: so the bound scenarios run; peers have no such thing.
    binds: bool = False

    def close(self) -> None:
        for close in self.closers:
            # Closing a benchmark contender must not hide its results.
            with contextlib.suppress(Exception):
                close()


WSGISESSION_STORES = ["memory", "sqlite", "redis", "postgres", "cookie"]
BEAKER_TYPES = ["memory", "memory-signed", "file", "redis", "cookie"]


def _wsgisession_store(kind: str, ctx: Context, counting: bool) -> Store:
    if kind == "memory":
        return wsgisession.MemoryStore()
    if kind == "sqlite":
        return wsgisession.SqliteStore(os.path.join(ctx.root, "wsgisession.db"))
    if kind == "redis":
        client: Any = counting_redis_client(ctx.redis_url) if counting else ctx.redis_url
        return wsgisession.RedisStore(client, prefix=ctx.redis_prefix)  # type: ignore[attr-defined]
    if kind == "redis-client":
        # The same store on a redis-py client handed in: redis-py's command layer and pool,
        # as a store not built from a URL has them (beside the URL's lean path above).
        import redis

        client = (
            counting_redis_client(ctx.redis_url)
            if counting
            else redis.Redis.from_url(ctx.redis_url)
        )
        return wsgisession.RedisStore(client, prefix=ctx.redis_prefix)  # type: ignore[attr-defined]
    if kind == "postgres":
        return wsgisession.PostgresStore(  # type: ignore[attr-defined]
            ctx.postgres_dsn, table=ctx.table("sessions")
        )
    if kind == "cookie":
        return wsgisession.CookieStore()  # type: ignore[attr-defined]
    raise ValueError(f"unknown wsgisession store {kind!r}")


def missing(name: str) -> str | None:
    """Return why contender *name* cannot run here, or None when it can."""
    if name.startswith(("django:", "flask:sqlalchemy", "flask:wsgisession-", "pyramid:")):
        return _missing_framework_peer(name)
    if name == "wsgisession:redis-client":
        return redis_available()
    family, _, kind = name.partition(":")
    needs = {"redis": "RedisStore", "postgres": "PostgresStore", "cookie": "CookieStore"}
    if family == "wsgisession" and kind in needs and not hasattr(wsgisession, needs[kind]):
        return f"wsgisession has no {needs[kind]} yet"
    if kind == "redis" or name == "flask:redis" or name == "flask:wsgisession-redis":
        return redis_available()
    if kind == "postgres":
        return postgres_available()
    return None


def _missing_framework_peer(name: str) -> str | None:
    """Why a Django contender, Flask-Session's SQLAlchemy one or wsgisession's Flask
    integration cannot run here, or None."""
    import importlib.util

    family, _, kind = name.partition(":")
    if family == "django":
        from .django_peers import missing as django_missing

        return django_missing(kind)
    if family == "pyramid":
        if importlib.util.find_spec("pyramid") is None:
            return "pyramid is not installed (pip install 'sessions-wsgi[pyramid]')"
        return redis_available() if kind.endswith("-redis") else None
    if kind == "sqlalchemy":
        for module in ("flask_session", "flask_sqlalchemy", "sqlalchemy"):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (make bench installs the bench requirements)"
        return postgres_available()
    # The Flask integration (flask:wsgisession-<store>) needs its module and Flask.
    try:
        found = importlib.util.find_spec("wsgisession.integrations.flask") is not None
    except ImportError:
        found = False
    if not found:
        return "wsgisession.integrations.flask cannot be imported (pip install flask)"
    store = kind.partition("-")[2]
    return redis_available() if store == "redis" else None


def build(name: str, ctx: Context) -> Contender:
    """Build contender *name* (``family:kind``), e.g. ``wsgisession:sqlite`` or ``beaker:file``."""
    family, _, kind = name.partition(":")
    if family == "bare":
        return Contender(name, "plain WSGI app", "bare", PLAIN_APP)
    if name == "floor:sqlite":
        return _build_sqlite_floor(name, ctx)
    if family == "wsgisession":
        return _build_wsgisession(name, kind, ctx)
    if family == "beaker":
        return _build_beaker(name, kind, ctx)
    if family == "flask":
        return _build_flask(name, kind, ctx)
    if family == "django":
        return _build_django(name, kind, ctx)
    if family == "pyramid":
        return _build_pyramid(name, kind, ctx)
    raise ValueError(f"unknown contender {name!r}")


def _build_wsgisession(name: str, kind: str, ctx: Context) -> Contender:
    logic = make_logic(lambda environ: environ["wsgisession"], _no_save)
    store = _wsgisession_store(kind, ctx, counting=False)
    app = SessionMiddleware(logic, store, secret_keys=[SECRET])
    closers = [store.close]
    if kind == "cookie":
        # The cookie store lives in the cookie: there is no server to count calls to, and a
        # delegate would hide from the middleware that the store is client-side.
        label = f"wsgisession {type(store).__name__}"
        return Contender(name, label, "wsgisession", app, store=store, closers=closers)
    redis_kind = kind in ("redis", "redis-client")
    counted_inner = _wsgisession_store(kind, ctx, counting=True) if redis_kind else store
    counter = CountingStore(counted_inner)
    counted = SessionMiddleware(logic, counter, secret_keys=[SECRET])
    if counted_inner is not store:
        closers.append(counted_inner.close)
    label = f"wsgisession {type(store).__name__}"
    if kind == "redis-client":
        label += ", redis-py client handed in"
        closers.append(store.client.close)
    return Contender(
        name, label, "wsgisession", app, counted, counter, store, redis_kind, closers, binds=True
    )


#: The sqlite3 floor, in process and through HTTP: one JSON record read and written back.
FLOOR_SELECT = "SELECT data FROM t WHERE key = ?"
FLOOR_UPSERT = (
    "INSERT INTO t (key, data) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data"
)


def sqlite_floor_connection(path: str) -> sqlite3.Connection:
    """A connection to the floor's database: WAL, synchronous=NORMAL, autocommit, SQLite's own
    busy wait and checkpoints, as a plain sqlite3 user would have it; the table made."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS t (key TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID"
    )
    return conn


class _SqliteFloor:
    """The application with the session replaced by the bare sqlite3 floor, no signing and no
    session layer at all: the record is the JSON of the session under the raw cookie value.

    ``/write`` reads it, decodes the JSON, increments the counter, encodes it and upserts it,
    as any session write must; ``/read`` reads and decodes it; ``/new`` encodes and inserts a
    fresh one. It shows what SQLite and JSON alone cost in the same server, the ceiling of any
    SQLite-backed session. One connection per thread (a threaded server may serve requests
    side by side), opened anew in a child after a fork.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        local = self.local
        if getattr(local, "pid", 0) != os.getpid():
            local.conn = sqlite_floor_connection(self.path)
            local.pid = os.getpid()
        conn: sqlite3.Connection = local.conn
        return conn

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        headers = [("Content-Type", "text/plain"), ("Content-Length", "2")]
        if path in ("/write", "/setup", "/read"):
            conn = self._connection()
            cookie = environ.get("HTTP_COOKIE", "")
            key = cookie.partition("floor=")[2] or secrets.token_hex(16)
            row = conn.execute(FLOOR_SELECT, (key,)).fetchone()
            data = json.loads(row[0]) if row else {**SETUP_DATA, "n": 0}
            if path != "/read":
                data["n"] = data.get("n", 0) + 1
                conn.execute(FLOOR_UPSERT, (key, json.dumps(data)))
            if path == "/setup":
                headers.append(("Set-Cookie", f"floor={key}; Path=/"))
        elif path == "/new":
            key = secrets.token_hex(16)
            self._connection().execute(FLOOR_UPSERT, (key, json.dumps({"user": "alice"})))
            headers.append(("Set-Cookie", f"floor={key}; Path=/"))
        start_response("200 OK", headers)
        return [BODY]


def _build_sqlite_floor(name: str, ctx: Context) -> Contender:
    app = _SqliteFloor(os.path.join(ctx.root, "floor-app.db"))
    return Contender(name, "sqlite3 + JSON alone (floor app)", "floor", app)


def _build_beaker(name: str, kind: str, ctx: Context) -> Contender:
    import warnings

    import beaker.session
    from beaker.middleware import SessionMiddleware as BeakerMiddleware

    # Beaker warns on every forged cookie, each with its own text: printing thousands of them
    # would time the terminal, not Beaker (which still makes each warning).
    warnings.filterwarnings("ignore", message="Invalidating corrupt session")

    # Beaker names its Redis keys after the session id: give ids this run's prefix, so the
    # shared Redis can be cleaned of exactly what this run wrote.
    if not getattr(beaker.session, "_bench_patched", False):
        original = beaker.session._session_id
        beaker.session._session_id = lambda: ctx.token + original()
        beaker.session._bench_patched = True
    options: dict[str, Any] = {"session.key": "beaker.session.id"}
    label = {
        "memory": "Beaker memory",
        "memory-signed": "Beaker memory, signed id",
        "file": "Beaker file",
        "redis": "Beaker ext:redis",
        "cookie": "Beaker encrypted cookie",
    }[kind]
    if kind in ("memory", "memory-signed"):
        options["session.type"] = "memory"
        if kind == "memory-signed":
            options["session.secret"] = SECRET
    elif kind == "file":
        options["session.type"] = "file"
        options["session.data_dir"] = os.path.join(ctx.root, "beaker-data")
        options["session.lock_dir"] = os.path.join(ctx.root, "beaker-lock")
    elif kind == "redis":
        options["session.type"] = "ext:redis"
        options["session.url"] = ctx.redis_url
        options["session.timeout"] = 3600  # a TTL on Beaker's keys, as a safety net
    elif kind == "cookie":
        options["session.type"] = "cookie"
        options["session.validate_key"] = SECRET
        options["session.encrypt_key"] = SECRET
        options["session.crypto_type"] = "cryptography"
    else:
        raise ValueError(f"unknown Beaker type {kind!r}")
    logic = make_logic(lambda environ: environ["beaker.session"], _beaker_save)
    return Contender(name, label, "beaker", BeakerMiddleware(logic, options))


def _build_flask(name: str, kind: str, ctx: Context) -> Contender:
    import flask

    app = flask.Flask(f"bench_{kind}")
    app.secret_key = SECRET
    closers: list[Callable[[], None]] = []
    if kind == "bare":
        from flask.sessions import SessionInterface

        class NoSession(SessionInterface):
            """Flask with no session at all: what Flask itself costs, for the bare column."""

            def open_session(self, app: Any, request: Any) -> Any:
                return None

            def save_session(self, app: Any, session: Any, response: Any) -> None:
                pass

        app.session_interface = NoSession()
        label = "Flask, no session (bare)"
    elif kind == "cookie":
        label = "Flask cookie session"
    elif kind == "sqlalchemy":
        label = _flask_sqlalchemy(app, ctx, closers)
    elif kind == "redis":
        import redis
        from flask_session import Session as FlaskSession

        client = redis.Redis.from_url(ctx.redis_url)
        app.config.update(
            SESSION_TYPE="redis",
            SESSION_REDIS=client,
            SESSION_KEY_PREFIX=f"{ctx.token}:flask:",
            SESSION_USE_SIGNER=True,
        )
        with warnings.catch_warnings():
            # Flask-Session 0.8 deprecates its signed ids; signed, it costs what it costs its
            # users who keep them (an HMAC per request), the same work wsgisession does.
            warnings.filterwarnings("ignore", "The 'use_signer' option", DeprecationWarning)
            FlaskSession(app)
        closers.append(client.close)
        label = "Flask-Session Redis"
    elif kind.startswith("wsgisession-"):
        # wsgisession as Flask's own session (wsgisession.integrations.flask), tagged JSON as
        # the integration uses by default.
        from wsgisession.integrations.flask import SessionInterface, _tagged

        store_kind = kind.partition("-")[2]
        store: Store
        if store_kind == "memory":
            store = wsgisession.MemoryStore(serializer=_tagged())
        elif store_kind == "sqlite":
            path = os.path.join(ctx.root, "flask-wsgisession.db")
            store = wsgisession.SqliteStore(path, serializer=_tagged())
        elif store_kind == "redis":
            store = wsgisession.RedisStore(  # type: ignore[attr-defined]
                ctx.redis_url, prefix=f"{ctx.redis_prefix}flask:", serializer=_tagged()
            )
        else:
            raise ValueError(f"unknown wsgisession store {store_kind!r} for Flask")
        app.session_interface = SessionInterface(store)
        closers.append(store.close)
        label = f"wsgisession Flask, {type(store).__name__}"
    else:
        raise ValueError(f"unknown Flask session kind {kind!r}")
    session = flask.session

    def respond() -> flask.Response:
        return flask.Response(BODY, content_type="text/plain")

    @app.route("/untouched")
    def untouched() -> flask.Response:
        return respond()

    @app.route("/read")
    def read() -> flask.Response:
        session.get("k3")
        return respond()

    @app.route("/write")
    def write() -> flask.Response:
        session["n"] = session.get("n", 0) + 1
        return respond()

    @app.route("/new")
    def new() -> flask.Response:
        session["user"] = "alice"
        return respond()

    @app.route("/setup")
    def setup() -> flask.Response:
        session.update(SETUP_DATA)
        session["n"] = 0
        return respond()

    return Contender(name, label, "flask", app.wsgi_app, closers=closers)


def _build_pyramid(name: str, kind: str, ctx: Context) -> Contender:
    """Pyramid with its own signed-cookie session, or with wsgisession's session factory."""
    from pyramid.config import Configurator
    from pyramid.response import Response

    closers: list[Callable[[], None]] = []
    if kind == "cookie":
        from pyramid.session import SignedCookieSessionFactory

        factory: Any = SignedCookieSessionFactory(SECRET)
        label = "Pyramid signed-cookie session"
    elif kind.startswith("wsgisession-"):
        from wsgisession.integrations.pyramid import session_factory

        store_kind = kind.partition("-")[2]
        store: Store
        if store_kind == "memory":
            store = wsgisession.MemoryStore()
        elif store_kind == "redis":
            store = wsgisession.RedisStore(  # type: ignore[attr-defined]
                ctx.redis_url, prefix=f"{ctx.redis_prefix}pyramid:"
            )
        else:
            raise ValueError(f"unknown wsgisession store {store_kind!r} for Pyramid")
        factory = session_factory(store)
        closers.append(store.close)
        label = f"wsgisession Pyramid, {type(store).__name__}"
    else:
        raise ValueError(f"unknown Pyramid session kind {kind!r}")

    def view(request: Any) -> Any:
        path = request.path_info
        session = request.session if path != "/untouched" else None
        if path == "/read":
            session.get("k3")
        elif path == "/write":
            session["n"] = session.get("n", 0) + 1
        elif path == "/new":
            session["user"] = "alice"
        elif path == "/setup":
            session.update(SETUP_DATA)
            session["n"] = 0
        return Response(BODY, content_type="text/plain")

    with Configurator() as config:
        config.set_session_factory(factory)
        for path in ("/untouched", "/read", "/write", "/new", "/setup"):
            config.add_route(path, path)
            config.add_view(view, route_name=path)
        app = config.make_wsgi_app()
    return Contender(name, label, "pyramid", app, closers=closers)


def _flask_sqlalchemy(app: Any, ctx: Context, closers: list[Callable[[], None]]) -> str:
    """Flask-Session's SQLAlchemy backend on PostgreSQL (psycopg 3), in a table of this run.

    Flask-SQLAlchemy keeps its engine's connection pool for the life of the app, so each
    request checks out a warm connection, as a deployed app has it.
    """
    from flask_session import Session as FlaskSession
    from flask_sqlalchemy import SQLAlchemy

    dsn = ctx.postgres_dsn
    for scheme in ("postgresql://", "postgres://"):
        if dsn.startswith(scheme):
            dsn = "postgresql+psycopg://" + dsn[len(scheme) :]
    app.config.update(SQLALCHEMY_DATABASE_URI=dsn, SQLALCHEMY_TRACK_MODIFICATIONS=False)
    db = SQLAlchemy(app)
    app.config.update(
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY=db,
        SESSION_SQLALCHEMY_TABLE=ctx.table("flask_sessions"),
        SESSION_USE_SIGNER=True,
        # Flask-Session's default: no purge inside requests (its CLI command purges).
        SESSION_CLEANUP_N_REQUESTS=None,
    )
    FlaskSession(app)

    def dispose() -> None:
        with app.app_context():
            db.engine.dispose()

    closers.append(dispose)
    return "Flask-Session SQLAlchemy, PostgreSQL"


def _build_django(name: str, kind: str, ctx: Context) -> Contender:
    from . import django_peers

    django_peers.configure(ctx)
    contender = Contender(name, django_peers.LABELS[kind], "django", django_peers.handler(kind))
    if kind.startswith("wsgisession-"):
        override, close = django_peers.wsgisession_settings(kind, ctx)
        contender.enter = override.enable
        contender.leave = override.disable
        contender.closers.append(close)
    return contender


# Driving an app in-process ------------------------------------------------------------------


def environ_for(path: str, cookie: str | None = None) -> Environ:
    """A GET request environ for *path*, with a Cookie header when *cookie* is given."""
    from webob import Request

    headers = {"Cookie": cookie} if cookie else {}
    environ: Environ = Request.blank(path, headers=headers).environ
    environ.pop("webob.adhoc_attrs", None)
    return environ


class _Capture:
    __slots__ = ("status", "headers")

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status = status
        self.headers = headers
        return None


def call(app: WSGIApp, environ: Environ) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call *app* once and return its status, headers and body."""
    capture = _Capture()
    result = app(environ, capture)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return capture.status, capture.headers, body


def session_cookie(app: WSGIApp, path: str = "/setup") -> str:
    """Make a session through *path* and return its ``name=value`` for a Cookie header."""
    status, headers, _ = call(app, environ_for(path))
    if not status.startswith("200"):
        raise RuntimeError(f"{path} answered {status}")
    for name, value in headers:
        if name.lower() == "set-cookie":
            return value.split(";", 1)[0]
    raise RuntimeError(f"{path} set no cookie; headers were {headers}")


def forged_cookie(cookie: str) -> str:
    """The cookie *cookie* with a value of the right shape but a wrong signature."""
    name = cookie.split("=", 1)[0]
    return f"{name}={secrets.token_urlsafe(32)}.{secrets.token_urlsafe(32)}"
