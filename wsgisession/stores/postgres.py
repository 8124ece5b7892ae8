"""PostgresStore: sessions in a PostgreSQL table, on psycopg 3 with a psycopg_pool pool.

One row per session: ``key`` (the SHA-256 of the id, never the id), ``data`` and ``meta`` as
``jsonb``, ``expires`` in seconds since the epoch of the middleware's clock, with an index for
purging. Loading is one plain SELECT, a read-only statement; only a row found dead costs a
second one, which deletes it unless another worker refreshed it meanwhile. Saving is
one UPDATE that merges the request's changes inside the database, ``(data - removed_keys) ||
set_keys`` plus the increments computed in SQL, and only while the row is alive for the caller's
``now``, so a logged-out session is never brought back. Creating is one INSERT, which also
deletes the row a regenerated session replaces. Connections run in autocommit, so each statement
is one round trip.

The pool is opened in the process that first uses the store, and a child process after
``fork()`` (gunicorn ``--preload``) starts its own, never touching the parent's connections.
A thread keeps the connection it took between requests (at most ``pool_size - 1`` threads do,
so the others always find one to share), which spares each statement the pool's checkout.
"""

from __future__ import annotations

import math
import os
import re
import select
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, StoreError, StoreUnavailableError
from ..records import user_of
from ..serializers import JSONSerializer, Serializer
from ._support import (
    check_sql_name,
    import_driver,
    logger,
    reset_after_fork,
    sql_statements,
    warn_corrupt,
)
from .base import Changes, Record, Store, StoreStats

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PostgresStore"]

#: The default of an option whose None means something (prepare_threshold=None: never prepare).
_UNSET: Any = object()


class PostgresStore(Store):
    """Sessions in a PostgreSQL table: one statement to load and one to save.

    :param dsn: a ``postgresql://`` (or ``postgres://``) URL or a libpq ``key=value`` string.
        A URL may also carry the store options ``pooler``, ``prepare_threshold`` and
        ``synchronous_commit`` as parameters (``?pooler=transaction``), for
        ``store_from_url`` and the command line; a keyword given here wins.
    :param table: the table, optionally ``schema.table``; created with its index on first use.
    :param pool_size: the most connections one process keeps open.
    :param timeout: seconds to wait for a connection (from the pool or a new one) before the
        store reports itself unavailable, a 503 by default, well under a worker timeout. It
        also bounds every statement (``statement_timeout``) and, at half of it, every wait
        for a row another transaction holds locked (``lock_timeout``), so a locked session
        is a quick 503 that gives its connection back to the pool.
    :param pooler: ``"transaction"`` when the DSN points at a pooler in transaction mode
        (PgBouncer ``pool_mode = transaction``): no prepared statements unless
        ``prepare_threshold`` says otherwise, and the settings above are made with
        ``set_config(..., true)`` (``SET LOCAL``) in each statement's own transaction, in the
        same round trip. ``None`` (direct, or a pooler in session mode) sets them once per
        connection.
    :param prepare_threshold: passed to psycopg: after how many runs a statement is prepared
        on its connection; ``None`` never prepares. psycopg's default (5) unless
        ``pooler="transaction"``, where it is ``None``.
    :param synchronous_commit: ``False`` makes commits return before the WAL reaches disk
        (``synchronous_commit = off`` for the store's own transactions): faster saves, and a
        crash of the database server may lose the last fraction of a second of them.
    :param configure: called with each new connection, e.g. to set ``search_path``.
    :param serializer: how values become JSON text; it must produce JSON, as the columns are
        ``jsonb``.

    The store opens one connection when it is built, and closes it at once (the pool itself is
    opened in the process that first uses the store). A DSN the server refuses (no such
    database or user, a wrong password, an ``sslmode`` the server does not offer, a host name
    that does not resolve) raises :class:`~wsgisession.ConfigurationError` then, with the
    server's own message and what to check. A server that is down or does not answer in time
    is logged as a warning: the store connects on first use, and until the server is back
    each request meets the middleware's ``on_store_error`` policy, promptly, with the server's
    own reason for the failure.

    ``jsonb`` cannot hold the NUL character (``\\u0000``) inside strings, so strings that
    hold one are stored escaped and read back exactly as they were.
    """

    #: Expired rows deleted per statement by :meth:`purge`.
    purge_batch = 1000

    def __init__(
        self,
        dsn: str,
        table: str = "wsgisession_sessions",
        *,
        pool_size: int = 4,
        timeout: float = 3.0,
        pooler: str | None = None,
        prepare_threshold: int | None = _UNSET,
        synchronous_commit: bool | None = None,
        configure: Callable[[psycopg.Connection[Any]], None] | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(_NulSafe(serializer if serializer is not None else JSONSerializer()))
        psycopg, psycopg_pool, sql = import_driver(
            "PostgresStore",
            "psycopg 3 and psycopg_pool",
            "postgres",
            "psycopg",
            "psycopg_pool",
            "psycopg.sql",
        )
        check_sql_name(table, schema=True)
        if pool_size < 1:
            raise ConfigurationError(f"pool_size={pool_size} must be at least 1")
        if timeout <= 0:
            raise ConfigurationError(f"timeout={timeout} must be a positive number of seconds")
        dsn, url_options = _split_store_options(dsn)
        if pooler is None:
            pooler = url_options.get("pooler") or None
        if pooler not in (None, "session", "transaction"):
            raise ConfigurationError(
                f"pooler={pooler!r} must be 'transaction' (PgBouncer pool_mode = transaction), "
                "'session' or None (a direct connection)"
            )
        if prepare_threshold is _UNSET and "prepare_threshold" in url_options:
            prepare_threshold = _threshold(url_options["prepare_threshold"])
        if prepare_threshold is _UNSET:
            prepare_threshold = None if pooler == "transaction" else _UNSET
        elif prepare_threshold is not None and (
            not isinstance(prepare_threshold, int) or prepare_threshold < 0
        ):
            raise ConfigurationError(
                f"prepare_threshold={prepare_threshold!r} must be None (never prepare, for "
                "transaction-mode poolers) or a number of runs, 0 or more"
            )
        if synchronous_commit is None and "synchronous_commit" in url_options:
            synchronous_commit = _flag("synchronous_commit", url_options["synchronous_commit"])
        try:
            params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(
                f"the PostgreSQL DSN cannot be parsed ({exc}); use "
                "postgresql://user@host:5432/dbname"
            ) from exc
        self._psycopg = psycopg
        self._pool_module = psycopg_pool
        self.dsn = dsn
        self.table = table
        self.pool_size = pool_size
        self.timeout = timeout
        self._configure_user = configure
        self._where = (
            f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/"
            f"{params.get('dbname', params.get('user', ''))}"
        )
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            # libpq counts whole seconds, at least 2.
            self._connect_kwargs["connect_timeout"] = max(2, math.ceil(timeout))
        #: ``"transaction"``, ``"session"`` or None: see the class docstring.
        self.pooler = pooler
        #: psycopg's prepare_threshold for the store's connections (None: never prepare).
        self.prepare_threshold: int | None = 5 if prepare_threshold is _UNSET else prepare_threshold
        if prepare_threshold is not _UNSET:
            self._connect_kwargs["prepare_threshold"] = prepare_threshold
        #: False: commits do not wait for the WAL flush (``synchronous_commit = off``).
        self.synchronous_commit = synchronous_commit is not False
        settings = {
            "statement_timeout": str(max(1, round(timeout * 1000))),
            "lock_timeout": str(max(1, round(timeout * 500))),
        }
        if not self.synchronous_commit:
            settings["synchronous_commit"] = "off"
        local = pooler == "transaction"
        self._sql_settings = sql.SQL("SELECT {}").format(
            sql.SQL(", ").join(
                sql.SQL("set_config({}, {}, {})").format(
                    sql.Literal(name), sql.Literal(value), sql.Literal(local)
                )
                for name, value in settings.items()
            )
        )
        #: Why the last connection attempt failed, and how many have failed (the pool only logs).
        self._connect_error: BaseException | None = None
        self._connect_failures = 0
        self._connection_class = _connection_class(psycopg, weakref.ref(self), local)
        self._pool: ConnectionPool[Any] | None = None
        self._abandoned: list[Any] = []
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pins = _Pins()
        self._schema_ready = False
        self._closed = False

        parts = table.split(".")
        names = {
            "t": sql.Identifier(*parts),
            "i": sql.Identifier(parts[-1] + "_expires"),
            "u": sql.Identifier(parts[-1] + "_user"),
            "r": sql.Literal(".".join(f'"{part}"' for part in parts)),
        }
        # The statements, by name, from postgres.sql beside this module.
        statements = {
            name: sql.SQL(text).format(**names)
            for name, text in sql_statements("postgres.sql").items()
        }
        self._sql_schema = [statements["schema_table"], statements["schema_index"]]
        self._sql_has_user = statements["schema_has_user"]
        self._sql_add_user = statements["schema_add_user"]
        self._sql_user_index = statements["schema_user_index"]
        self._sql_lock = statements["schema_lock"]
        self._sql_load = statements["load"]
        self._sql_delete_dead = statements["delete_dead"]
        self._sql_create = statements["create"]
        self._sql_create_replacing = statements["create_replacing"]
        self._sql_touch = statements["touch"]
        self._sql_save = statements["save"]
        self._sql_save_int_increments = statements["save_int_increments"]
        self._sql_lock_for_merge = statements["lock_for_merge"]
        self._sql_write_merged = statements["write_merged"]
        self._sql_delete = statements["delete"]
        self._sql_purge = statements["purge"]
        self._sql_count_expired = statements["count_expired"]
        self._sql_stats = statements["stats"]
        self._sql_user_sessions = statements["user_sessions"]
        self._sql_revoke_user = statements["revoke_user"]

        self._check_connection()
        reset_after_fork(self)

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r}, table={self.table!r})"

    # Connections ------------------------------------------------------------------------

    def _check_connection(self) -> None:
        """Open and close one connection, so that a DSN the server refuses fails at construction.

        A server that cannot be reached now is only logged: it may be starting, and the
        middleware's ``on_store_error`` policy is there for outages.
        """
        try:
            self._psycopg.Connection.connect(self.dsn, **self._connect_kwargs).close()
        except self._psycopg.Error as exc:
            reason, advice = _diagnose(exc)
            if advice is not None:
                raise ConfigurationError(
                    f"the store's connection to PostgreSQL at {self._where} failed: {reason}; "
                    f"{advice}"
                ) from exc
            logger.warning(
                "PostgreSQL at %s cannot be reached now (%s); the store connects on first use, "
                "and until then requests meet the on_store_error policy: %s",
                self._where,
                reason,
                _UNREACHABLE_ADVICE,
            )

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        with self._connections_lock:
            self._connections.add(conn)
        self._connect_error = None
        if self.pooler != "transaction":
            # Once per connection: the timeouts (and synchronous_commit) for all it runs.
            conn.execute(self._sql_settings)
        if self._configure_user is not None:
            self._configure_user(conn)

    def _get_pool(self) -> ConnectionPool[Any]:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed; build a new store")
            if self._pool is None:
                pool = self._pool_module.ConnectionPool(
                    self.dsn,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs=self._connect_kwargs,
                    connection_class=self._connection_class,
                    configure=self._configure,
                    timeout=self.timeout,
                    # No background retries with a growing back-off: during an outage they
                    # would leave the pool waiting long after the server is back. A failed
                    # connection is given up at once, and the next request tries anew.
                    reconnect_timeout=0,
                    name=f"wsgisession-{self.table}",
                    open=False,
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    def _reset_after_fork(self) -> None:
        """In a child process: forget the parent's pool without touching its connections."""
        if self._pool is not None:
            # Closing a connection would send the server a Terminate over the socket the parent
            # still uses. Point each inherited descriptor at /dev/null instead, so whatever the
            # child does with these objects can never reach the parent's sessions.
            devnull = os.open(os.devnull, os.O_RDWR)
            try:
                for conn in list(self._connections):
                    try:
                        os.dup2(devnull, conn.pgconn.socket)
                    except Exception:
                        continue
            finally:
                os.close(devnull)
            self._abandoned.append(self._pool)
        self._pool = None
        self._connections = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pins = _Pins()

    def _connection(self) -> _Checkout:
        """A pooled connection for a ``with`` block, with driver failures turned into store
        errors (:class:`_Checkout`)."""
        return _Checkout(self)

    def _checkout(self) -> tuple[ConnectionPool[Any] | None, psycopg.Connection[Any]]:
        """This thread's pinned connection, or one taken from the pool (then returned with it).

        A thread keeps the connection it first took, so that a request does not pay the
        pool's checkout and return twice (about a tenth of a load's instructions); at most
        ``pool_size - 1`` threads pin one, so the others always have one to share. A pinned
        connection the server has closed is given back and replaced.
        """
        pins = self._pins
        pin = getattr(pins.local, "pin", None)
        if pin is not None:
            conn = pin.conn
            if not _closed_by_server(conn):
                return None, conn
            # The server closed it (a restart): close it before the pool sees it again.
            conn.close()
            pins.release(pin)
        pool = self._pool or self._get_pool()
        deadline = time.monotonic() + self.timeout
        conn = self._getconn(pool, deadline)
        try:
            if _closed_by_server(conn):
                # The server closed this idle connection, so it was restarted and closed the
                # others too: drop them all now rather than fail this request on them.
                conn.close()
                pool.putconn(conn)
                pool.check()
                conn = self._getconn(pool, deadline)
            if not self._schema_ready:
                self._create_schema(conn)
        except BaseException:
            pool.putconn(conn)
            raise
        if pins.take(pool, conn, self.pool_size - 1):
            return None, conn
        return pool, conn

    def _store_error(self, exc: BaseException) -> StoreError | None:
        """The store error for a driver failure, saying what to check; None for any other."""
        psycopg = self._psycopg
        if not isinstance(exc, psycopg.Error):
            return None
        if isinstance(exc, (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)):
            return StoreUnavailableError(
                f"PostgreSQL at {self._where}: a session statement on table {self.table!r} "
                f"waited past its limit ({type(exc).__name__}: {_first_line(exc)}); another "
                f"transaction held the row locked longer than lock_timeout={self.timeout / 2}s, "
                f"or the statement ran past statement_timeout={self.timeout}s: look for long "
                "transactions in pg_stat_activity and pg_locks"
            )
        if isinstance(
            exc,
            (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement),
        ):
            return StoreError(
                f"PostgreSQL at {self._where} lost the store's prepared statements "
                f"({type(exc).__name__}: {_first_line(exc)}): a connection pooler in transaction "
                "mode (PgBouncer pool_mode = transaction) runs them on other server "
                "connections. Pass pooler='transaction' (or ?pooler=transaction in the URL), "
                "or prepare_threshold=None, or put the pooler in session mode"
            )
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return self._unreachable(exc)
        if isinstance(exc, psycopg.errors.UntranslatableCharacter):
            return StoreError(
                "PostgreSQL jsonb cannot hold the NUL character (\\u0000) inside strings; "
                "remove it from the session values"
            )
        return StoreError(
            f"PostgreSQL at {self._where} refused a session statement on table "
            f"{self.table!r} ({type(exc).__name__}: {_first_line(exc)}); check that the "
            "user may read and write that table, and that its columns are as "
            "create_schema() makes them"
        )

    def _getconn(self, pool: ConnectionPool[Any], deadline: float) -> psycopg.Connection[Any]:
        """A connection from *pool* by *deadline*, or the reason there is none, as soon as known.

        While this process holds no open connection, a connection attempt that fails ends the
        wait at once with the server's own message: no connection would come before the
        deadline. While it holds some, they are waited for, as they come back from requests.
        """
        failures = self._connect_failures
        while True:
            remaining = deadline - time.monotonic()
            holding = self._holds_connection()
            wait = remaining if holding else min(remaining, _FAILURE_POLL)
            try:
                conn: psycopg.Connection[Any] = pool.getconn(timeout=wait)
                return conn
            except self._pool_module.PoolTimeout as exc:
                if wait >= remaining:
                    raise self._timed_out(holding) from exc
                cause = self._connect_error
                if (
                    cause is not None
                    and self._connect_failures != failures
                    and not self._holds_connection()
                ):
                    raise self._refused(cause) from cause

    def _holds_connection(self) -> bool:
        with self._connections_lock:
            return any(not conn.closed for conn in self._connections)

    def _refused(self, cause: BaseException) -> StoreUnavailableError:
        """The error for a connection attempt that failed: the server's own reason first."""
        reason, advice = _diagnose(cause)
        if advice is not None:
            return StoreUnavailableError(
                f"the store's connection to PostgreSQL at {self._where} failed: {reason}; {advice}"
            )
        return StoreUnavailableError(
            f"PostgreSQL at {self._where} cannot be reached: {reason}; {_UNREACHABLE_ADVICE}"
        )

    def _timed_out(self, holding: bool) -> StoreUnavailableError:
        """The error for a request that got no connection within the timeout."""
        if holding:
            return StoreUnavailableError(
                f"PostgreSQL at {self._where}: all pool_size={self.pool_size} connections of "
                f"this process stayed busy for timeout={self.timeout}s; raise pool_size "
                "(within the server's max_connections) or timeout, or look for slow statements "
                "and long transactions in pg_stat_activity"
            )
        cause = self._connect_error
        if cause is not None:
            reason, advice = _diagnose(cause)
            return StoreUnavailableError(
                f"PostgreSQL at {self._where} gave no connection within timeout={self.timeout}s; "
                f"the last attempt failed: {reason}; {advice or _UNREACHABLE_ADVICE}"
            )
        return StoreUnavailableError(
            f"PostgreSQL at {self._where} did not answer within timeout={self.timeout}s; check "
            "that the server is running and not overloaded, and that nothing between here and "
            "it (a firewall, a proxy) holds the connection without answering"
        )

    def _unreachable(self, exc: BaseException) -> StoreUnavailableError:
        """The error for a connection that failed under a statement."""
        return StoreUnavailableError(
            f"PostgreSQL at {self._where} broke off a session statement ({type(exc).__name__}: "
            f"{_first_line(exc)}); {_UNREACHABLE_ADVICE}"
        )

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        # The advisory lock keeps workers that start together from racing on CREATE TABLE.
        with conn.transaction():
            conn.execute(self._sql_lock, (self.table,))
            for statement in self._sql_schema:
                conn.execute(statement)
            row = conn.execute(self._sql_has_user).fetchone()
            if not (row and row[0]):
                # A table from before the user index; its CREATE TABLE above did nothing.
                conn.execute(self._sql_add_user)
            conn.execute(self._sql_user_index)
        self._schema_ready = True

    def create_schema(self) -> None:
        """Create the table and its indexes now (they are also created on first use).

        A table made by an older version gets its ``user_id`` column and index here.
        """
        with self._connection() as conn:
            if self._schema_ready:  # _connection() has just made them
                return
            self._create_schema(conn)

    # Store API --------------------------------------------------------------------------

    def load(self, key: str, now: float) -> Record | None:
        """One plain SELECT: the live row, or None; a row dead for *now* is then deleted."""
        with self._connection() as conn:
            row = conn.execute(self._sql_load, {"key": key}).fetchone()
            if row is not None and not row[2] > now:
                conn.execute(self._sql_delete_dead, {"key": key, "now": float(now)})
                return None
        if row is None:
            return None
        data = self.decode(key, row[0])
        meta = self.decode(key, row[1])
        if not isinstance(data, dict) or not isinstance(meta, dict):
            warn_corrupt(key, "is not a JSON object")
            return None
        return Record(data, meta, float(row[2]), size=len(row[0]))

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        """One INSERT; with *replaces*, one statement that moves the session from the live old row.

        When the row under *replaces* is gone or dead for *now*, nothing is written: False.
        """
        dumps = self.serializer.dumps
        params: dict[str, Any] = {
            "key": key,
            "data": dumps(dict(data)),
            "meta": dumps(dict(meta)),
            "expires": float(expires),
            "user_id": user_of(meta),
        }
        with self._connection() as conn:
            if replaces is None:
                conn.execute(self._sql_create, params)
                return True
            params["replaces"] = replaces
            params["now"] = float(now)
            return conn.execute(self._sql_create_replacing, params).rowcount == 1

    def save(self, key: str, changes: Changes, now: float) -> bool:
        """One UPDATE that merges the changes in the database, only into a live row.

        Removals and updates are jsonb's ``-`` and ``||``; int increments are added in
        ``numeric``. What SQL cannot add as Python does (a float amount, or an int to add to a
        float) is merged here by :meth:`Changes.apply_to` under a row lock, in one transaction.
        """
        dumps = self.serializer.dumps
        params: dict[str, Any] = {
            "key": key,
            "now": float(now),
            "meta": dumps(dict(changes.meta)) if changes.meta is not None else None,
            "expires": float(changes.expires) if changes.expires is not None else None,
            "user_id": user_of(changes.meta),
        }
        increments = changes.increments
        if not changes.updates and not changes.removals and not increments:
            statement = self._sql_touch
        else:
            params["removals"] = [_escape(name) for name in changes.removals]
            params["updates"] = dumps(dict(changes.updates))
            statement = self._sql_save
            if increments:
                if any(amount.__class__ is not int for amount in increments.values()):
                    with self._connection() as conn:
                        return self._merge_locked(conn, key, changes, params)
                params["names"] = [_escape(name) for name in increments]
                params["amounts"] = [str(amount) for amount in increments.values()]
                statement = self._sql_save_int_increments
        with self._connection() as conn:
            if conn.execute(statement, params).rowcount == 1:
                return True
            if statement is not self._sql_save_int_increments:
                return False
            # Dead, or an int to add to a float or past 4300 digits: the locked merge decides.
            return self._merge_locked(conn, key, changes, params)

    def _merge_locked(
        self, conn: psycopg.Connection[Any], key: str, changes: Changes, params: dict[str, Any]
    ) -> bool:
        """Merge *changes* into the live row with :meth:`Changes.apply_to`, under its row lock."""
        with conn.transaction():
            row = conn.execute(self._sql_lock_for_merge, params).fetchone()
            if row is None:
                return False
            current = self.decode(key, row[0])
            merged = changes.apply_to(current if isinstance(current, dict) else {})
            params["data"] = self.serializer.dumps(merged)
            conn.execute(self._sql_write_merged, params)
        return True

    def delete(self, key: str) -> None:
        """One DELETE."""
        with self._connection() as conn:
            conn.execute(self._sql_delete, (key,))

    def user_sessions(self, user_id: str, now: float) -> list[tuple[str, Record]]:
        """One SELECT on the user index: the user's live rows."""
        with self._connection() as conn:
            rows = conn.execute(
                self._sql_user_sessions, {"user_id": user_id, "now": float(now)}
            ).fetchall()
        found = []
        for key, data_text, meta_text, expires in rows:
            data = self.decode(key, data_text)
            meta = self.decode(key, meta_text)
            if isinstance(data, dict) and isinstance(meta, dict):
                found.append((key, Record(data, meta, float(expires), size=len(data_text))))
        return found

    def revoke_user(self, user_id: str, now: float, keep: str | None = None) -> int:
        """One DELETE of the user's rows but *keep*; a session moving to a new key meanwhile
        is deleted under its new key (see ``create_replacing`` in postgres.sql)."""
        params = {"user_id": user_id, "keep": keep, "now": float(now)}
        with self._connection() as conn:
            row = conn.execute(self._sql_revoke_user, params).fetchone()
        return int(row[0]) if row else 0

    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        """Delete expired rows in batches of :attr:`purge_batch`, each its own short statement."""
        total = 0
        while True:
            with self._connection() as conn:
                deleted = conn.execute(self._sql_purge, (float(now), self.purge_batch)).rowcount
            total += deleted
            if progress is not None:
                progress(total)
            if deleted < self.purge_batch:
                return total

    def count_expired(self, now: float) -> int:
        """Count the expired rows that purge() would delete."""
        with self._connection() as conn:
            row = conn.execute(self._sql_count_expired, (float(now),)).fetchone()
        assert row is not None
        return int(row[0])

    def stats(self, now: float) -> StoreStats:
        """Count the live rows and the bytes of their data as JSON text."""
        with self._connection() as conn:
            row = conn.execute(self._sql_stats, (float(now),)).fetchone()
        assert row is not None
        return StoreStats(int(row[0]), int(row[1]))

    def close(self) -> None:
        """Close this process's pool and its connections."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._closed = True
        self._pins.release_all()
        if pool is not None:
            pool.close()


#: The DSN parameters that are store options, not libpq's.
_STORE_OPTIONS = ("pooler", "prepare_threshold", "synchronous_commit")


def _split_store_options(dsn: str) -> tuple[str, dict[str, str]]:
    """Take the store's own parameters out of a ``postgresql://`` URL; the rest stays as it is."""
    from urllib.parse import unquote

    scheme = dsn.partition("://")[0].lower()
    if scheme not in ("postgresql", "postgres") or "?" not in dsn:
        return dsn, {}
    base, _, query = dsn.partition("?")
    kept: list[str] = []
    found: dict[str, str] = {}
    for item in query.split("&"):
        name, _, value = item.partition("=")
        if unquote(name) in _STORE_OPTIONS:
            found[unquote(name)] = unquote(value)
        elif item:
            kept.append(item)
    return base + ("?" + "&".join(kept) if kept else ""), found


def _threshold(text: str) -> int | None:
    """A prepare_threshold URL parameter: digits, or none / empty for None."""
    if text.strip().lower() in ("", "none", "null"):
        return None
    if not text.strip().isdigit():
        raise ConfigurationError(
            f"prepare_threshold={text!r} must be a number of runs or 'none' (never prepare)"
        )
    return int(text)


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise ConfigurationError(f"{name}={text!r} must be on or off")


def _connection_class(
    psycopg: Any, store: weakref.ReferenceType[PostgresStore], local: bool
) -> type[Any]:
    """The psycopg connection class of a store's pool.

    It remembers why the last connection attempt failed (the pool itself only logs it), so a
    request waiting for a connection gets the server's own reason as soon as it is known. With
    *local* (a transaction-mode pooler), every statement outside a pipeline goes in one
    pipeline after the store's ``set_config(..., true)``: one round trip, one implicit
    transaction, on one server connection, so the settings bound that statement and nothing
    else.
    """

    class SessionConnection(psycopg.Connection):  # type: ignore[misc]
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            try:
                return super().connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                owner = store()
                if owner is not None:
                    owner._connect_error = exc
                    owner._connect_failures += 1
                raise

        if local:

            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                owner = store()
                if owner is None or self.pgconn.pipeline_status:  # already in a pipeline
                    return super().execute(query, params, **kwargs)
                with self.pipeline():
                    super().execute(owner._sql_settings)
                    cursor = super().execute(query, params, **kwargs)
                return cursor

    return SessionConnection


class _Pin:
    """One thread's pinned connection; when the thread ends, it is given back to the pool."""

    __slots__ = ("pool", "conn", "finalizer", "__weakref__")

    def __init__(self, pool: Any, conn: Any) -> None:
        self.pool = pool
        self.conn = conn
        # A thread's locals go when it ends: the connection then goes back to the pool (in
        # this process only: a forked child never hands its parent's connections around).
        self.finalizer = weakref.finalize(self, _give_back, pool, conn, os.getpid())


class _Pins:
    """The connections that threads keep between requests (:meth:`PostgresStore._checkout`)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.live: weakref.WeakSet[_Pin] = weakref.WeakSet()

    def take(self, pool: Any, conn: Any, most: int) -> bool:
        """Pin *conn* to this thread if fewer than *most* are pinned; tell whether it was."""
        with self.lock:
            if len(self.live) >= most:
                return False
            pin = _Pin(pool, conn)
            self.live.add(pin)
        self.local.pin = pin
        return True

    def release(self, pin: _Pin) -> None:
        """Unpin *pin* (this thread's) and give its connection back to the pool."""
        self.local.pin = None
        with self.lock:
            self.live.discard(pin)
        pin.conn = None
        pin.finalizer()  # gives the connection back now, and never again

    def release_all(self) -> None:
        """Close every pinned connection (the store is closing)."""
        with self.lock:
            pins = list(self.live)
            self.live = weakref.WeakSet()
        for pin in pins:
            conn, pin.conn = pin.conn, None
            pin.finalizer.detach()
            if conn is not None:
                conn.close()
        self.local = threading.local()


def _give_back(pool: Any, conn: Any, pid: int) -> None:
    """Return *conn* to *pool*, which discards it when it is closed or broken; nothing in a
    process other than *pid*, the one that took it."""
    if conn is None or os.getpid() != pid:
        return
    try:
        pool.putconn(conn)
    except Exception:  # the pool is closed, or the connection is not its any more
        conn.close()


class _Checkout:
    """``with store._connection() as conn``: a pooled connection, returned on the way out, with
    driver failures turned into store errors that say what to check.

    A plain class rather than ``@contextmanager`` (a generator costs more to enter and leave,
    twice per request), and no ``with conn`` around the statements: in autocommit each one is
    its own transaction, so there is nothing to commit or roll back at the end.
    """

    __slots__ = ("_store", "_pool", "_conn")

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._pool: Any = None
        self._conn: Any = None

    def __enter__(self) -> psycopg.Connection[Any]:
        try:
            self._pool, self._conn = self._store._checkout()
        except BaseException as exc:
            error = self._store._store_error(exc)
            if error is None:
                raise
            raise error from exc
        return self._conn  # type: ignore[no-any-return]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.putconn(self._conn)
        elif exc is not None:
            # A pinned connection that a failure left closed, broken or inside a transaction
            # goes back to the pool, which repairs or discards it; the next request takes anew.
            conn = self._conn
            idle = self._store._psycopg.pq.TransactionStatus.IDLE
            if conn.closed or conn.broken or conn.info.transaction_status != idle:
                pins = self._store._pins
                pin = getattr(pins.local, "pin", None)
                if pin is not None and pin.conn is conn:
                    pins.release(pin)
        if exc is not None:
            error = self._store._store_error(exc)
            if error is not None:
                raise error from exc


def _closed_by_server(conn: psycopg.Connection[Any]) -> bool:
    """Tell whether the server has closed this idle pooled connection (e.g. it was restarted).

    An idle connection has nothing to read; a readable one holds the server's goodbye or EOF.
    Unlike a test query this costs no round trip.
    """
    if conn.closed:
        return True
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    return bool(readable)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


#: How often a request waiting for a first connection looks whether an attempt failed.
_FAILURE_POLL = 0.05

_UNREACHABLE_ADVICE = (
    "check that the server is running, listens on that host and port (listen_addresses and "
    "port in postgresql.conf) and accepts connections from here"
)

#: What a refused connection means, by the words of libpq, PostgreSQL or PgBouncer, and what to
#: do. A failure none of these match (refused, timed out, starting up, too many clients) is an
#: outage, not a mistake in the DSN.
_REFUSALS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), advice)
    for pattern, advice in (
        (
            r"invalid response to SSL negotiation|unsupported frontend protocol|"
            r"expected authentication request",
            "something other than PostgreSQL answers on that host and port; check the port "
            "in the DSN (5432 by default)",
        ),
        (
            r"unsupported startup parameter",
            "a connection pooler (PgBouncer) accepts no startup parameters such as options=; "
            "pass settings as store options instead (synchronous_commit=False, "
            "?synchronous_commit=off), or list them in its ignore_startup_parameters",
        ),
        (
            r'database "[^"]*" does not exist|no such database',
            "fix the database name in the DSN, or create the database (createdb NAME; for "
            "PgBouncer, list it under [databases])",
        ),
        (
            r'role "[^"]*" does not exist|no such user',
            "fix the user name in the DSN, or create the role (CREATE ROLE name LOGIN)",
        ),
        (
            r"is not permitted to log in",
            "connect as a role that may log in, or grant it (ALTER ROLE name LOGIN)",
        ),
        (
            r"password authentication failed|authentication failed|no password supplied|"
            r"password is missing|fe_sendauth",
            "check the user name and the password: in the DSN, in PGPASSWORD or in ~/.pgpass",
        ),
        (
            r"no pg_hba\.conf entry",
            "allow this client in the server's pg_hba.conf (its address, the user, the "
            "database, with or without SSL) and reload the server, or connect as allowed there",
        ),
        (
            r"permission denied for database|does not have CONNECT privilege",
            "GRANT CONNECT ON DATABASE to the store's user, or connect as another user",
        ),
        (
            r"is not currently accepting connections",
            "the database refuses all connections (ALLOW_CONNECTIONS false); point the DSN at "
            "another database",
        ),
        (
            r"SSL|certificate|sslmode|GSSAPI|gssencmode",
            "set sslmode in the DSN to what the server offers (disable, prefer, require, "
            "verify-ca, verify-full), and check that the files sslrootcert, sslcert and "
            "sslkey name exist",
        ),
        (
            r"failed to resolve host|could not translate host name",
            "check the host name in the DSN; if that host appears only later (a container "
            "started after the app), start the app after it",
        ),
        (
            r"unrecognized configuration parameter|invalid value for parameter",
            "fix the setting in the DSN's options= parameter",
        ),
        (
            r"invalid|unrecognized|connection is bad",
            "fix that parameter of the DSN (libpq's connection parameters list the values)",
        ),
    )
)


def _diagnose(exc: BaseException) -> tuple[str, str | None]:
    """A failed connection's own reason, and what to do when the DSN is wrong (None: an outage)."""
    text = str(exc).strip()
    # "connection failed: connection to server at "h" (a), port p failed: FATAL:  the reason"
    reason = " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
    reason = re.sub(r"^connection (?:failed|is bad): ", "", reason)
    reason = re.sub(r"^connection to server (?:at|on) .*?, port \d+ failed: ", "", reason)
    # Transient words win over the DSN patterns: an SSL connection the server broke off, a
    # server that is starting up, shutting down or full.
    if re.search(
        r"timeout expired|connection refused|starting up|shutting down|recovery mode|"
        r"too many clients|connection slots are reserved|closed the connection unexpectedly|"
        r"SSL SYSCALL|EOF detected|cannot connect to server|no more connections allowed",
        reason,
        re.IGNORECASE,
    ):
        return reason, None
    for pattern, advice in _REFUSALS:
        if pattern.search(reason):
            return reason, advice
    return reason, None


# jsonb cannot hold the NUL character, which JSON and every other store can. Strings that hold
# NUL (or the escape character itself) are stored with U+E000 as an escape: U+E000 U+E001 for
# NUL and U+E000 U+E000 for U+E000. Text without either is stored as it is, at no cost.
#
# jsonb keeps numbers as numeric, which has no -0.0 and prints 1e16 as 10000000000000000, an int
# to JSON: such floats are stored as strings tagged U+E000 U+E002, which escaping never makes
# (an escaped U+E000 is always followed by U+E000 or U+E001). Other floats print with a point.
_ESC = "\ue000"
_FLOAT_TAG = "\ue000\ue002"
_UNESCAPE = re.compile("\ue000([\ue000\ue001])")
#: From this size up, repr() writes a float with an exponent, and numeric drops its point.
_FLOAT_EXPONENT = 1e16


def _escape(text: str) -> str:
    if "\x00" not in text and _ESC not in text:
        return text
    return text.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "\ue001")


def _unescape(text: str) -> str:
    if _ESC not in text:
        return text
    return _UNESCAPE.sub(lambda m: "\x00" if m.group(1) == "\ue001" else _ESC, text)


def _to_jsonb(value: Any) -> Any:
    """*value* with its strings escaped and the floats numeric would change tagged."""
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, float):
        if abs(value) >= _FLOAT_EXPONENT or (value == 0.0 and math.copysign(1.0, value) < 0):
            return _FLOAT_TAG + repr(value)
        return value
    if isinstance(value, dict):
        return {_escape(k) if isinstance(k, str) else k: _to_jsonb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonb(v) for v in value]
    return value


def _from_jsonb(value: Any) -> Any:
    """The value :func:`_to_jsonb` was given."""
    if isinstance(value, str):
        if value.startswith(_FLOAT_TAG):
            return float(value[len(_FLOAT_TAG) :])
        return _unescape(value)
    if isinstance(value, dict):
        return {_unescape(k): _from_jsonb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonb(v) for v in value]
    return value


class _NulSafe:
    """Wraps the store's serializer so that values survive a jsonb column exactly.

    The text is checked first, so a value with no NUL, no U+E000 and no float numeric would
    change is serialized once, as it is.
    """

    __slots__ = ("inner",)

    def __init__(self, inner: Serializer) -> None:
        self.inner = inner

    def dumps(self, value: Any) -> str:
        text = self.inner.dumps(value)
        if "\\u0000" in text or _ESC in text or "e+" in text or "-0.0" in text:
            text = self.inner.dumps(_to_jsonb(value))
        return text

    def loads(self, data: str | bytes) -> Any:
        value = self.inner.loads(data)
        text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
        return _from_jsonb(value) if _ESC in text else value
