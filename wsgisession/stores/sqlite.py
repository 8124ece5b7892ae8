"""SqliteStore: sessions in an SQLite file, shared by every worker process on one machine.

WAL journal, one connection per thread, fresh connections after fork. A statement that meets
another process's write lock is retried after pauses that start at 20 µs, within a busy timeout.
Saves are optimistic: one UPDATE that succeeds when nobody saved the session since this request
loaded it, and otherwise a short ``BEGIN IMMEDIATE`` transaction that merges the changes into
what is stored now.

A session's user (``meta["user"]``) is also in its row's ``user_id`` column, under a partial
index, written by the same statement as the meta: SQLite runs one write at a time, so a
revocation (one ``DELETE ... WHERE user_id = ?``) and a move to a new key never interleave.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from ..errors import ConfigurationError, StoreUnavailableError
from ..records import user_of
from ..serializers import Serializer
from ._support import check_sql_name, logger, reset_after_fork
from .base import Changes, Record, Store, StoreStats

__all__ = ["SqliteStore"]

_T = TypeVar("_T")


class SqliteStore(Store):
    """Sessions in an SQLite database file, for one machine with any number of workers.

    :param path: the database file, created with its schema on first use. ``":memory:"`` gives
        a throwaway database in a temporary folder, private to this store (for tests).
    :param table: the table name; ``wsgisession_sessions`` by default.
    :param busy_timeout: seconds a statement waits for another process's write lock before the
        store reports itself unavailable (a 503 by default, never a hang).
    :param purge_every: after this many new sessions in a process, one small batch of expired
        rows is deleted on the side; 0 turns that off (then run ``wsgisession purge``).
    :param checkpoint_every: after this many writes in a process, the store folds the WAL
        back into the database and restarts it (a ``RESTART`` checkpoint). SQLite's automatic
        checkpoint is off: with several workers writing at once it never manages to restart
        the WAL and then checkpoints on every commit. 0 leaves checkpoints to SQLite.
    :param serializer: how values become text; JSON by default.

    The folder must exist and the file must be writable when the store is built (a
    :class:`~wsgisession.errors.ConfigurationError` otherwise, so a wrong path stops the
    server's start). At most once every :attr:`file_check_interval` seconds the store checks
    that the path still names the file it opened: a database deleted or replaced under a
    running process is an error logged and a 503, never writes into a file no one will read
    again; the next request opens what the path names now.
    """

    #: Expired rows deleted per statement, so a purge never holds the write lock for long.
    purge_batch = 500
    #: Seconds between two checks that the path still names the opened database file.
    file_check_interval = 1.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "wsgisession_sessions",
        busy_timeout: float = 5.0,
        purge_every: int = 1000,
        checkpoint_every: int = 1000,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(serializer)
        check_sql_name(table)
        if checkpoint_every < 0:
            raise ConfigurationError(
                f"checkpoint_every={checkpoint_every} must be 0 (SQLite's own checkpoints) "
                "or a positive number of writes"
            )
        if busy_timeout <= 0:
            raise ConfigurationError(
                f"busy_timeout={busy_timeout} must be a positive number of seconds"
            )
        self.path = os.fspath(path)
        if self.path != ":memory:":
            _check_path(self.path)
        self.table = table
        self.busy_timeout = busy_timeout
        self.purge_every = purge_every
        self.checkpoint_every = checkpoint_every
        self._writes = 0
        self._purging = 0  # purges running in this process; they checkpoint after each batch
        self._tempdir: str | None = None
        if self.path == ":memory:":
            # A private file in a temporary folder, removed at close: unlike SQLite's shared
            # in-memory cache, it gives every thread the same WAL locking as a real file.
            self._tempdir = tempfile.mkdtemp(prefix="wsgisession-")
            self.path = os.path.join(self._tempdir, "sessions.db")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._schema_ready = False
        self._creates = 0
        self._pid = self._owner_pid = os.getpid()
        #: (device, inode) of the database file this process opened; None until it opens it.
        self._identity: tuple[int, int] | None = None
        self._check_at = 0.0
        t = table
        self._sql_load = f"SELECT data, meta, expires, version FROM {t} WHERE key = ?"
        self._sql_drop_expired = f"DELETE FROM {t} WHERE key = ? AND expires <= ?"
        self._sql_insert = (
            f"INSERT INTO {t} (key, data, meta, expires, version, user_id)"
            " VALUES (?, ?, ?, ?, 0, ?)"
        )
        self._sql_delete = f"DELETE FROM {t} WHERE key = ?"
        self._sql_delete_live = f"DELETE FROM {t} WHERE key = ? AND expires > ?"
        # A save's UPDATE, optimistic or merging, sets only the columns that change, keyed by
        # (meta changes, expires changes): an unchanged expires leaves its index alone.
        where = "version = version + 1 WHERE key = ? AND version = ? AND expires > ?"
        self._sql_update = {
            (False, False): f"UPDATE {t} SET data = ?, {where}",
            (True, False): f"UPDATE {t} SET data = ?, meta = ?, user_id = ?, {where}",
            (False, True): f"UPDATE {t} SET data = ?, expires = ?, {where}",
            (True, True): f"UPDATE {t} SET data = ?, meta = ?, user_id = ?, expires = ?, {where}",
        }
        self._sql_touch = (
            f"UPDATE {t} SET meta = coalesce(?, meta), expires = coalesce(?, expires)"
            f" WHERE key = ? AND expires > ?"
        )
        self._sql_touch_meta = (
            f"UPDATE {t} SET meta = ?, user_id = ?, expires = coalesce(?, expires)"
            f" WHERE key = ? AND expires > ?"
        )
        self._sql_user_sessions = (
            f"SELECT key, data, meta, expires, version FROM {t} WHERE user_id = ? AND expires > ?"
        )
        self._sql_revoke_live = (
            f"DELETE FROM {t} WHERE user_id = ? AND key IS NOT ? AND expires > ?"
        )
        self._sql_revoke_rest = f"DELETE FROM {t} WHERE user_id = ? AND key IS NOT ?"
        self._sql_read_for_merge = f"SELECT data, version FROM {t} WHERE key = ? AND expires > ?"
        self._sql_purge = (
            f"DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires <= ? LIMIT ?)"
        )
        self._sql_count_expired = f"SELECT count(*) FROM {t} WHERE expires <= ?"
        self._sql_stats = (
            f"SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0) FROM {t}"
            " WHERE expires > ?"
        )
        reset_after_fork(self)

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, table={self.table!r})"

    # Connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # SQLite's own busy handler sleeps a whole millisecond or more at the first lock it
        # meets, while a session write holds the lock for some 10 µs: it is turned off, and
        # _run waits instead, in pauses that start at 20 µs (see _run).
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if self.checkpoint_every:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            if not self._schema_ready:
                self._create_schema(conn)
            self.prepare_connection(conn)
            if self._identity is None:
                opened = os.stat(self.path)
                self._identity = (opened.st_dev, opened.st_ino)
        except BaseException:
            conn.close()  # a lock met while setting up: _run retries with a new connection
            raise
        with self._lock:
            self._connections.append(conn)
        return conn

    def prepare_connection(self, conn: sqlite3.Connection) -> None:
        """Override to set more pragmas or register SQL functions on each new connection.

        Called once per connection, in the process and thread that will use it, after the
        store's own pragmas (WAL, busy timeout) and once the table exists.
        """

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        t = self.table
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, data TEXT NOT NULL,"
            " meta TEXT NOT NULL, expires REAL NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
            " user_id TEXT) WITHOUT ROWID"
        )
        conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires)")
        # A table made before the user index: add its column (another process may be doing
        # the same; SQLite then says the column exists, which is what was wanted).
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({t})")}
        if "user_id" not in columns:
            try:
                conn.execute(f"ALTER TABLE {t} ADD COLUMN user_id TEXT")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {t}_user ON {t} (user_id) WHERE user_id IS NOT NULL"
        )
        self._schema_ready = True

    def create_schema(self) -> None:
        """Create the table and its indexes now (they are also created on first use).

        A table made by an older version gets its ``user_id`` column and index here too.
        """
        self._run(self._create_schema)

    def _reset_after_fork(self) -> None:
        # Connections opened before fork belong to the parent: never use or close them here
        # (closing could checkpoint and remove the parent's WAL); leave them to the parent.
        self._abandoned = [*getattr(self, "_abandoned", []), *self._connections]
        self._connections = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._purging = 0  # a purge running in the parent does not run in this child

    def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run *operation* on this thread's connection; SQLite failures become store errors.

        An operation that meets another connection's lock ("database is locked") is run again
        after a pause of 20 µs, doubling up to 2 ms, never past ``busy_timeout`` in all: a user
        sees either the answer or, once the timeout is spent, the store's outage policy. Each
        operation is one statement or one transaction, so a refused attempt changed nothing.
        """
        if time.monotonic() >= self._check_at:
            self._check_file()
        deadline = 0.0
        pause = 0.00002
        while True:
            try:
                return operation(self._conn())
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._unavailable(exc) from exc
                now = time.monotonic()
                if not deadline:
                    deadline = now + self.busy_timeout
                if now + pause >= deadline:
                    raise self._unavailable(exc) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
            except sqlite3.DatabaseError as exc:
                raise StoreUnavailableError(
                    f"SQLite database {self.path!r} failed ({exc}); check the file is a "
                    "healthy SQLite database (PRAGMA integrity_check)"
                ) from exc

    def _execute(self, sql: str, params: tuple[Any, ...], *, first_row: bool = False) -> Any:
        """One statement: its cursor, or with *first_row* its first row (read inside the guard).

        It runs straight on this thread's connection, with no closure and no clock reading; any
        failure is retried once through :meth:`_run`, which waits out locks and turns the rest
        into store errors. A statement that fails is undone, so the retry applies it once.
        """
        if time.monotonic() >= self._check_at:
            self._check_file()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                cursor = conn.execute(sql, params)
                return cursor.fetchone() if first_row else cursor
            except sqlite3.Error:
                pass  # retried below

        def statement(conn: sqlite3.Connection) -> Any:
            cursor = conn.execute(sql, params)
            return cursor.fetchone() if first_row else cursor

        return self._run(statement)

    def _wrote(self) -> None:
        """Count one committed write; every :attr:`checkpoint_every` writes, checkpoint."""
        self._writes += 1
        if self._writes >= self.checkpoint_every > 0 and not self._purging:
            self._writes = 0
            self.checkpoint()

    def checkpoint(self) -> bool:
        """Fold the WAL into the database and have the next write start it afresh.

        Waits a millisecond at most for a writer or reader to move on (a longer wait would stall
        the request that runs it); returns False when that was not enough, and the next
        checkpoint tries again. A failure is logged, never raised: the write that led here is
        committed already.
        """
        try:
            conn = self._conn()
            # The connection's own wait (0 unless prepare_connection set one) comes back after.
            own_timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
            conn.execute("PRAGMA busy_timeout = 1")
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(own_timeout)}")
        except sqlite3.Error as exc:
            if not (isinstance(exc, sqlite3.OperationalError) and _is_busy(exc)):
                logger.warning("SQLite checkpoint of %r failed (%s); the WAL grows", self.path, exc)
            return False
        return not busy

    def _check_file(self) -> None:
        """Fail loudly when the path no longer names the database file this process opened.

        A file deleted or replaced under running workers would otherwise take their writes
        into an inode no one opens again. Once noticed, the error is logged and raised (a
        503); every thread's connection is dropped, so the next request opens the path anew.
        """
        self._check_at = time.monotonic() + self.file_check_interval
        identity = self._identity
        if identity is None or self._pid != os.getpid():
            return
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            what = "was deleted"
        except OSError as exc:
            what = f"cannot be examined ({exc.strerror})"
        else:
            if (found.st_dev, found.st_ino) == identity:
                return
            what = "was replaced by another file"
        self._identity = None
        self._schema_ready = False  # the file there now may have no table yet
        self._local = threading.local()  # every thread reconnects on its next operation
        message = (
            f"SQLite database {self.path!r} {what} while this process had it open; the "
            "sessions written since are in the old file only. Restore the file and restart "
            "the workers; until then each request opens what the path names now (a new, "
            "empty database if nothing is there)"
        )
        logger.error("%s", message)
        raise StoreUnavailableError(message)

    def _unavailable(self, exc: sqlite3.OperationalError) -> StoreUnavailableError:
        """The error for a database that cannot be used now, saying what usually causes it."""
        return StoreUnavailableError(
            f"SQLite database {self.path!r} could not be used ({exc}); a lock held past "
            f"busy_timeout={self.busy_timeout}s, a full disk or a missing folder are the "
            "usual causes"
        )

    # Store API --------------------------------------------------------------------------

    def load(self, key: str, now: float) -> Record | None:
        """One SELECT; an expired row is deleted on the way."""
        row = self._execute(self._sql_load, (key,), first_row=True)
        if row is None:
            return None
        if row[2] <= now:
            self._execute(self._sql_drop_expired, (key, now))
            return None
        data = self.decode(key, row[0])
        meta = self.decode(key, row[1])
        if not isinstance(data, dict) or not isinstance(meta, dict):
            return None
        return Record(data, meta, row[2], row[3], len(row[0]))

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        """One INSERT; with *replaces*, one transaction that deletes the live old row, then inserts.

        When there is no live row under *replaces* (another request ended the session), the
        transaction writes nothing and the answer is False.
        """
        dumps = self.serializer.dumps
        params = (key, dumps(dict(data)), dumps(dict(meta)), expires, user_of(meta))

        if replaces is None:
            self._execute(self._sql_insert, params)
        else:

            def move(conn: sqlite3.Connection) -> bool:
                with _immediate(conn):
                    if conn.execute(self._sql_delete_live, (replaces, now)).rowcount != 1:
                        return False
                    conn.execute(self._sql_insert, params)
                return True

            if not self._run(move):
                return False
        self._wrote()
        if self.purge_every:
            self._creates += 1
            if self._creates % self.purge_every == 0:
                self._run(lambda conn: conn.execute(self._sql_purge, (now, self.purge_batch)))
        return True

    def save(self, key: str, changes: Changes, now: float) -> bool:
        """One UPDATE when nobody saved since this request loaded; else a merging transaction."""
        dumps = self.serializer.dumps
        meta = dumps(dict(changes.meta)) if changes.meta is not None else None
        expires = changes.expires
        saved: bool
        if not changes.updates and not changes.removals and not changes.increments:
            if meta is None:
                saved = self._execute(self._sql_touch, (meta, expires, key, now)).rowcount == 1
            else:
                params = (meta, user_of(changes.meta), expires, key, now)
                saved = self._execute(self._sql_touch_meta, params).rowcount == 1
        else:
            sql = self._sql_update[meta is not None, expires is not None]
            columns: tuple[Any, ...] = ()  # the values of meta and expires when they change
            if meta is not None:
                columns = (meta, user_of(changes.meta))
            if expires is not None:
                columns += (expires,)
            loaded = changes.loaded
            saved = False
            if loaded is not None and loaded.version is not None:
                result = changes.result
                whole = dumps(result if type(result) is dict else dict(result))
                params = (whole, *columns, key, loaded.version, now)
                saved = self._execute(sql, params).rowcount == 1
            if not saved:

                def merge(conn: sqlite3.Connection) -> bool:
                    with _immediate(conn):
                        row = conn.execute(self._sql_read_for_merge, (key, now)).fetchone()
                        if row is None:
                            return False
                        current = self.decode(key, row[0])
                        merged = changes.apply_to(current if isinstance(current, dict) else {})
                        conn.execute(sql, (dumps(merged), *columns, key, row[1], now))
                    return True

                saved = self._run(merge)
        if saved:
            self._wrote()
        return saved

    def delete(self, key: str) -> None:
        """One DELETE."""
        self._execute(self._sql_delete, (key,))
        self._wrote()

    def user_sessions(self, user_id: str, now: float) -> list[tuple[str, Record]]:
        """One SELECT on the ``user_id`` index: the user's live rows."""
        rows = self._run(
            lambda conn: conn.execute(self._sql_user_sessions, (user_id, now)).fetchall()
        )
        found = []
        for key, text, meta_text, expires, version in rows:
            data = self.decode(key, text)
            meta = self.decode(key, meta_text)
            if isinstance(data, dict) and isinstance(meta, dict):
                found.append((key, Record(data, meta, expires, version, len(text))))
        return found

    def revoke_user(self, user_id: str, now: float, keep: str | None = None) -> int:
        """One write transaction: the user's live rows but *keep* are deleted and counted,
        then its expired ones; no move to a new key can fall between the two."""

        def revoke(conn: sqlite3.Connection) -> int:
            with _immediate(conn):
                ended = conn.execute(self._sql_revoke_live, (user_id, keep, now)).rowcount
                conn.execute(self._sql_revoke_rest, (user_id, keep))
            return int(ended)

        ended = self._run(revoke)
        self._wrote()
        return ended

    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        """Delete expired rows in batches of :attr:`purge_batch`, each its own short transaction."""
        total = 0
        # While it runs, requests in this process leave checkpoints to it: a request's own would
        # copy a batch's pages and sync them, a pause of tens of milliseconds.
        self._purging += 1
        try:
            for batch in itertools.count(1):
                deleted = self._run(
                    lambda conn: conn.execute(self._sql_purge, (now, self.purge_batch)).rowcount
                )
                total += deleted
                if progress is not None:
                    progress(total)
                if deleted < self.purge_batch:
                    break
                # Fold each batch's pages back into the database now: a passive checkpoint
                # takes no lock, so requests keep writing between two batches. Every few
                # batches the WAL is restarted too, so it stays a few batches long (the restart
                # holds the write lock for a time that grows with the WAL).
                if batch % 8:
                    self._run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)"))
                else:
                    self.checkpoint()
            self.checkpoint()
            return total
        finally:
            self._purging -= 1

    def count_expired(self, now: float) -> int:
        """Count the expired rows that purge() would delete."""
        row = self._run(lambda conn: conn.execute(self._sql_count_expired, (now,)).fetchone())
        return int(row[0])

    def stats(self, now: float) -> StoreStats:
        """Count live rows and the bytes of their data."""
        count, size = self._run(lambda conn: conn.execute(self._sql_stats, (now,)).fetchone())
        return StoreStats(int(count), int(size))

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
        if self._tempdir is not None and self._owner_pid == os.getpid():
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None


def _check_path(path: str) -> None:
    """Refuse at construction a database path whose folder is missing or that cannot be written.

    Opening the file (creating it empty when it is missing, which SQLite takes as a new
    database) proves the folder and the file are writable, for root too.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigurationError(
            f"the folder {folder!r} of the SQLite database {path!r} does not exist; create it "
            "(mkdir -p) or give SqliteStore another path"
        )
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigurationError(
            f"the SQLite database {path!r} cannot be opened for writing ({exc.strerror}); give "
            "the application's user write access to it and to its folder, where SQLite also "
            "keeps its -wal and -shm files"
        ) from exc
    os.close(fd)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"the folder {folder!r} of the SQLite database {path!r} is not writable, and "
            "SQLite keeps its -wal and -shm files there; give the application's user write "
            "access to it"
        )


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (so SQLite's busy wait applies), committed or undone."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT can leave it open
            conn.execute("ROLLBACK")
        raise


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Tell whether SQLite refused because another connection holds a lock (SQLITE_BUSY/LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return (code & 0xFF) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED and their extended codes
    message = str(exc)
    return "locked" in message or "busy" in message
