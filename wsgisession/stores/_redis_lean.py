"""The lean Redis path: packed commands on a per-thread redis-py connection.

A :class:`~wsgisession.stores.redis.RedisStore` built from a plain ``redis://`` (``rediss://``,
``unix://``) URL sends its per-request commands (the load's ``HGETALL``, the save's ``EVALSHA``)
through :class:`LeanClient` rather than through redis-py's ``Redis`` command layer and its
connection pool, which cost about as much CPU as the round trip itself takes on loopback
(measured with callgrind: about 200k instructions of a load and a save's 465k). It still uses
redis-py's own :class:`redis.connection.Connection` (the same connection class and settings as
the client's pool: TLS, password, database, RESP2 or RESP3 from the URL, hiredis when
installed), its command packer and its reply parser; only the per-command bookkeeping around
them is gone.

* One connection per thread, made on first use; a forked child starts afresh (the parent's
  sockets are never written to from the child).
* Before a command goes out on a connection that sat idle, redis-py's ``can_read()`` (one
  non-blocking poll) tells whether the server closed it (a restart, an idle timeout): then it
  is reconnected first, as redis-py's pool does, so the first request after a restart succeeds.
  A failure during a command drops the connection (redis-py does that) and the next command
  connects anew; nothing is retried, as a save is not idempotent.
* Replies come in either protocol's shape: a RESP2 ``HGETALL`` is a flat list, a RESP3 one a
  map; :meth:`LeanClient.hgetall` always returns a new dict.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["LeanClient", "lean_client_for"]


def lean_client_for(client: Any, redis: Any) -> LeanClient | None:
    """A :class:`LeanClient` over *client*'s connection settings, or None when *client* must be
    used as it is: a cluster or Sentinel client, a subclass, a client-side cache, or a
    connection class of its own."""
    if type(client) is not redis.Redis:
        return None
    pool: Any = getattr(client, "connection_pool", None)
    if type(pool) is not redis.ConnectionPool or getattr(pool, "cache", None) is not None:
        return None
    connection_class = pool.connection_class
    connection = redis.connection
    if connection_class not in (
        connection.Connection,
        connection.SSLConnection,
        connection.UnixDomainSocketConnection,
    ):
        return None
    closed = (redis.ConnectionError, redis.TimeoutError, OSError)
    return LeanClient(connection_class, dict(pool.connection_kwargs), closed)


class LeanClient:
    """The few commands a session request sends, packed and sent on this thread's connection.

    :param connection_class: a redis-py connection class (TCP, TLS or Unix socket).
    :param kwargs: its keyword arguments, as the client's pool would pass them.
    :param closed: the exceptions that say a connection is closed or broken.
    """

    def __init__(
        self, connection_class: Any, kwargs: dict[str, Any], closed: tuple[type[BaseException], ...]
    ) -> None:
        self._connection_class = connection_class
        self._kwargs = kwargs
        self._closed = closed
        self._local = threading.local()
        self._lock = threading.Lock()
        #: Every connection made in this process, so that :meth:`close` can close them all.
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def _connection(self) -> Any:
        """This thread's connection, connected and with nothing pending on it."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connection_class(**self._kwargs)
            self._local.conn = conn
            with self._lock:
                self._connections.add(conn)
        try:
            # An idle connection has nothing to read: a readable one holds the server's EOF
            # (it restarted or timed the connection out) or stray data. can_read() connects
            # a connection that is not yet, as redis-py's pool does at checkout.
            fresh = not conn.can_read(timeout=0)
        except self._closed:
            fresh = False
        if not fresh:
            conn.disconnect()
            conn.connect()
        return conn

    def _call(self, packed: Any, conn: Any) -> Any:
        conn.send_packed_command(packed, check_health=False)
        return conn.read_response()

    def execute_command(self, *args: Any) -> Any:
        """Send one command and return its raw reply; an error reply raises, as in redis-py."""
        conn = self._connection()
        return self._call(conn.pack_command(*args), conn)

    def hgetall(self, name: str) -> dict[Any, Any]:
        """``HGETALL name`` as a new dict, from a RESP2 list or a RESP3 map alike."""
        reply = self.execute_command("HGETALL", name)
        if isinstance(reply, dict):
            return reply
        items = iter(reply)
        return dict(zip(items, items, strict=False))  # pairs: RESP2's flat list

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """``EVALSHA``; NOSCRIPT raises :class:`redis.exceptions.NoScriptError`, as in redis-py."""
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    def script_load(self, script: str) -> str:
        """``SCRIPT LOAD``: the script's SHA-1, as text."""
        sha = self.execute_command("SCRIPT", "LOAD", script)
        return sha.decode() if isinstance(sha, bytes) else str(sha)

    def close(self) -> None:
        """Close every connection this process made (threads reconnect if used again)."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.disconnect()

    def _reset_after_fork(self) -> None:
        """In a child: forget the parent's connections without closing them over its sockets."""
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections = weakref.WeakSet()


def _after_fork(ref: weakref.ReferenceType[LeanClient]) -> None:
    lean = ref()
    if lean is not None:
        lean._reset_after_fork()
