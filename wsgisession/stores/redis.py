"""RedisStore: sessions in Redis, shared by every worker on every machine that reaches it.

One hash per session, under ``prefix + key`` (the key is the SHA-256 of the id, never the id):

* ``d:<name>`` holds the JSON of the session key ``<name>``; the ``d:`` prefix means a user's
  key can never collide with the two bookkeeping fields below;
* ``@m`` holds the session metadata as JSON;
* ``@e`` holds the expiry, in seconds since the epoch of the middleware's clock.

Loading is one plain ``HGETALL``; the expiry is checked in Python with the caller's ``now``, and
only a record found dead costs a second call, which deletes it on the server unless another
worker refreshed it in between. Saving is one ``EVALSHA`` of a Lua script
(``redis_save.lua``, beside this module) that, atomically on the server, checks the record is
still alive for the caller's ``now`` (no resurrection) and applies the changes as
:meth:`Changes.apply_to <wsgisession.records.Changes.apply_to>` does: removals, updates, then
exact increments (ints of any size, floats as floats), and moves the expiry. Creating is one
``MULTI``/``EXEC``; moving a regenerated session is one script (``redis_create.lua``) that
writes the new record only while the one it replaces is alive. So each is exactly one round
trip (after a server restart, a script's first call gets NOSCRIPT and loads it once).

**A user's sessions.** A session bound to a user (``meta["user"]``) also carries the user's id
in its hash's ``@u`` field, and its key is a member of the user's index: a sorted set under
``prefix + "u:" + sha1(user id)``, scored by the session's expiry, trimmed of members dead for
longer than :attr:`RedisStore.ttl_margin` whenever one is added, and with a TTL that follows
its latest session, so it never grows without bound. The scripts share that logic
(``redis_index.lua``). On one node every step keeps the index in the same script as the
record, so it is exact; :meth:`RedisStore.user_sessions` and :meth:`RedisStore.revoke_user`
are one script each (``redis_users.lua``). Sessions not bound to a user cost no extra round
trip.

On Redis Cluster the index and the records live in different slots, which no script spans, so
the steps are ordered instead. A key enters the index *before* its record names the user (a
login, a bind); it leaves only once its record is gone (a logout, a move, a revocation), or by
the trim. The hash is the truth: listing and revoking check each member's ``@u``, so a member
left behind by a rebind or an unbind is ignored until trimmed. :meth:`RedisStore.revoke_user`
ends each member in its own slot (``redis_revoke.lua``); a member that has no record yet gets
a tombstone (``@x``) that refuses a move of the user's session still in flight (a login that
overlaps the revocation is a login after it, as on one node), and the index is read again
until a reading shows no member it has not handled: a session moved to a new key while the
revocation runs entered the index before its old record was taken, so the next reading finds
it. A bound write costs one more round trip there (the index first); a save that moves a
bound session's expiry sends the score to the index in the same pipelined round trip.

Redis's own TTL is only a safety net: it is set to the remaining lifetime *as the caller's clock
sees it* plus :attr:`RedisStore.ttl_margin`, so Redis forgets dead sessions by itself while
every expiry decision still follows the middleware's clock.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError, StoreError, StoreUnavailableError
from ..records import user_of
from ..serializers import Serializer, utf8_size, value_scanner
from ._redis_lean import LeanClient, lean_client_for
from ._support import import_driver, logger, read_text, warn_corrupt
from .base import Changes, Record, Store, StoreStats

__all__ = ["RedisStore"]

_DATA = "d:"
_META = "@m"
_EXPIRES = "@e"
#: The user a bound session belongs to (its meta says it too; the scripts read this field).
_USER = "@u"
#: The field of a tombstone: a key a cluster's revocation marked before its record came.
_TOMBSTONE = "@x"
#: After the prefix: the user indexes (``u:`` + SHA-1 hex of the user id), never a record key.
_INDEX = "u:"
#: The field names as a reply spells them: bytes, or str from a client with decode_responses.
_NAMES_BYTES = (_EXPIRES.encode(), _META.encode(), _DATA.encode())
_NAMES_TEXT = (_EXPIRES, _META, _DATA)

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class RedisStore(Store):
    """Sessions in Redis: one hash per session, one round trip to load and one to save.

    :param url_or_client: a ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL; a Redis
        Cluster URL ``redis+cluster://host:port,host:port/``; a Sentinel URL
        ``redis+sentinel://host:26379,host:26379/service?db=0``; or a ready redis-py client
        (``Redis``, a Sentinel ``master_for(...)`` client, ``RedisCluster``), which is then used
        as it is, timeouts included, and not closed by :meth:`close`. A cluster URL contacts
        its nodes once at construction to learn the slots (an unreachable cluster is a
        :class:`~wsgisession.errors.StoreUnavailableError` then); other URLs connect lazily.
    :param prefix: put before every key, so several applications can share one database.
    :param socket_timeout: seconds to wait for Redis to answer before the store reports itself
        unavailable (a 503 by default), well under a worker timeout; for URLs only.
    :param connect_timeout: seconds to wait for a connection; ``socket_timeout`` by default.
    :param replicas: every write (create, save, destroy) is followed, in the same round trip,
        by ``WAIT replicas replica_timeout``, and a write fewer replicas acknowledged in time is
        a :class:`~wsgisession.errors.StoreUnavailableError` (a 503), never a 200 that a
        failover then loses. 0 (the default) does not wait. Also the URL parameter
        ``?replicas=1``. Not with Redis Cluster, whose client cannot keep a WAIT on the
        connection of the write.
    :param replica_timeout: seconds ``WAIT`` waits for the replicas; half the
        ``socket_timeout`` by default, and less than it. Also ``?replica_timeout=0.5``.
    :param serializer: how values become text; JSON by default.

    hiredis speeds up the replies when it is installed (``pip install 'sessions-wsgi[redis]'``
    installs it). Connection failures are never retried inside a request: a save is not
    idempotent (increments), and a quick, clear 503 beats a slow one.
    """

    #: Seconds a record is kept by Redis after its expiry, so small clock differences between
    #: workers never make Redis drop a session that a worker still sees alive.
    ttl_margin = 60.0
    #: Keys examined per SCAN step by :meth:`purge` and :meth:`stats`.
    scan_batch = 500
    #: Seconds a cluster's revocation tombstone lasts: longer than any create still in flight.
    tombstone_seconds = 300.0
    #: Readings of a user's index a cluster's :meth:`revoke_user` makes at most while new
    #: members keep coming (sessions logging in while it runs).
    revoke_rounds = 100

    def __init__(
        self,
        url_or_client: Any,
        prefix: str = "wsgisession:",
        *,
        socket_timeout: float = 2.0,
        connect_timeout: float | None = None,
        replicas: int | None = None,
        replica_timeout: float | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(serializer)
        # How a loaded field is parsed (one C call for the JSON serializers), chosen once.
        self._scanner = value_scanner(self.serializer)
        (redis,) = import_driver("RedisStore", "the redis-py driver", "redis", "redis")
        timeouts = {"socket_timeout": socket_timeout, "connect_timeout": connect_timeout}
        for name, value in timeouts.items():
            if value is not None and not value > 0:
                raise ConfigurationError(
                    f"{name}={value!r} must be a positive number of seconds (a few seconds at "
                    "most, so an unreachable Redis gives a quick 503)"
                )
        self._redis = redis
        self.prefix = prefix
        self._owns_client = isinstance(url_or_client, str)
        where: str | None = None
        url = url_or_client if isinstance(url_or_client, str) else ""
        url_options = _store_parameters(url)
        #: Replicas that must acknowledge each write (``WAIT``); 0 does not wait.
        self.replicas = _replicas(replicas, url_options.get("replicas"))
        self.replica_timeout = _replica_timeout(
            replica_timeout, url_options.get("replica_timeout"), socket_timeout
        )
        self._wait_ms = max(1, round(self.replica_timeout * 1000))
        cluster_url = url.partition("://")[0].lower().endswith("+cluster")
        if self.replicas and (cluster_url or type(url_or_client).__name__ == "RedisCluster"):
            raise ConfigurationError(
                "replicas= cannot be used with Redis Cluster: its client sends WAIT on another "
                "connection than the write; drop replicas=, or set min-replicas-to-write on the "
                "cluster's primaries instead"
            )
        if url:
            self.client, where = _client_from_url(
                url, _client_options(socket_timeout, connect_timeout)
            )
        else:
            self.client = url_or_client
        self._cluster = type(self.client).__name__ == "RedisCluster"
        # A client the store built from a plain URL sends the per-request commands (HGETALL,
        # EVALSHA) packed on a per-thread connection (_redis_lean); a client handed in, a
        # cluster or a Sentinel client goes through redis-py's command layer as it is.
        self._lean: LeanClient | None = (
            lean_client_for(self.client, redis) if self._owns_client else None
        )
        #: What load() and the scripts go through: the lean client, or the redis-py client.
        self._fast: Any = self._lean if self._lean is not None else self.client
        # The scripts live beside this module, each with a header that says what it takes:
        # a save's changes applied (Changes.apply_to, in Lua) to a live record; a session
        # moved to a new key only while the record it replaces is alive; a dead record
        # deleted; a user's index read or changed; one session of a revoked user ended.
        # Each starts with the user index's shared functions (redis_index.lua) and the
        # names they need, so the index is kept in the same script on a single node.
        self._index_prefix = prefix + _INDEX
        prelude = (
            f"local PREFIX, INDEX, MARGIN = {_lua_text(prefix)}, "
            f"{'nil' if self._cluster else _lua_text(self._index_prefix)}, "
            f"{float(self.ttl_margin)!r}\n" + read_text("redis_index.lua")
        )
        register = self.client.register_script
        self._save_script = register(prelude + read_text("redis_save.lua"))
        self._create_script = register(prelude + read_text("redis_create.lua"))
        self._purge_script = register(prelude + read_text("redis_purge.lua"))
        self._users_script = register(prelude + read_text("redis_users.lua"))
        self._revoke_script = register(prelude + read_text("redis_revoke.lua"))
        self._where = where or _describe(self.client)
        self._failures = _Failures(redis, self._where, prefix, self._cluster)
        if self._owns_client:
            self._check_connection()

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, prefix={self.prefix!r})"

    def _check_connection(self) -> None:
        """One read at construction, so a URL the server refuses fails then (as PostgresStore).

        A wrong password, a user whose ACL does not allow the store's commands, or a database
        the server does not have raises ConfigurationError with the server's message and what
        to change. A server that cannot be reached now is only logged: it may be starting, and
        the middleware's ``on_store_error`` policy is there for outages. A client handed in
        ready-made is the application's to check.
        """
        errors = self._redis.exceptions
        refused = (errors.AuthenticationError, errors.NoPermissionError)
        try:
            self.client.hgetall(self._key("connection-check"))  # a key no session id hashes to
        except refused as exc:
            self._refused(exc)
        except errors.ResponseError as exc:
            if str(exc).startswith(("DB index is out of range", "WRONGPASS", "NOAUTH")):
                self._refused(exc)
        except (errors.ConnectionError, errors.TimeoutError) as exc:
            logger.warning(
                "Redis at %s cannot be reached now (%s: %s); the store connects on first use, "
                "and until then requests meet the on_store_error policy: check that the server "
                "is running and reachable from here, and the store URL",
                self._where,
                type(exc).__name__,
                exc,
            )
        except (self._redis.RedisError, errors.RedisClusterException):
            pass  # anything else (a cluster node, a replica loading) is reported per request
        finally:
            pool = getattr(self.client, "connection_pool", None)
            if pool is not None:
                pool.disconnect()  # as PostgresStore closes its check: no socket to fork with

    def _refused(self, exc: BaseException) -> None:
        """Raise the ConfigurationError for a connection the server refused at construction."""
        reason = _store_error(self._redis.exceptions, exc, self._where, self.prefix, self._cluster)
        raise ConfigurationError(f"RedisStore could not start: {reason}") from exc

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _errors(self) -> _Failures:
        """A context that turns redis-py failures into store errors saying what to check."""
        return self._failures

    def _ttl_ms(self, expires: float, now: float) -> int:
        return math.ceil((max(expires - now, 0.0) + self.ttl_margin) * 1000)

    # Store API --------------------------------------------------------------------------

    def load(self, key: str, now: float) -> Record | None:
        """One ``HGETALL``; the expiry is checked here, with the caller's clock.

        A plain command costs Redis and redis-py far less than a script. A record found dead
        costs one more call, which deletes it unless another worker refreshed it meanwhile.
        """
        name = self._key(key)
        try:
            with self._errors():
                fields = self._fast.hgetall(name)
        except StoreError as exc:
            if "WRONGTYPE" in str(exc):
                warn_corrupt(key)
                return None
            raise
        if not fields:
            return None
        expires_name, meta_name, data_prefix = (
            _NAMES_BYTES if isinstance(next(iter(fields)), bytes) else _NAMES_TEXT
        )
        # Read, never changed: a client-side cache may hand the same reply to the next caller.
        raw_expires = fields.get(expires_name)
        raw_meta = fields.get(meta_name)
        try:
            expires = float(raw_expires)
        except (TypeError, ValueError):
            if len(fields) == 1 and _tombstone(fields):  # a revoked key: no session, no fault
                return None
            warn_corrupt(key)
            return None
        if not expires > now:
            with self._errors():
                self._evalsha(self._purge_script, name, [repr(float(now))])
            return None
        return self._record(key, fields, expires, raw_meta, data_prefix)

    def _record(
        self, key: str, fields: Mapping[Any, Any], expires: float, raw_meta: Any, data_prefix: Any
    ) -> Record | None:
        """The record a live hash holds, or None (logged, hashed key only) when it is corrupt."""
        try:
            meta = None if raw_meta is None else self.serializer.loads(raw_meta)
            data, size = self._decode_data(fields, data_prefix)
        except (ValueError, TypeError, UnicodeDecodeError):
            warn_corrupt(key)
            return None
        if not isinstance(meta, dict):
            warn_corrupt(key)
            return None
        return Record(data, meta, expires, size=size)

    def _live_record(self, key: str, fields: Mapping[Any, Any], now: float) -> Record | None:
        """The record in a hash read by a listing, or None when it is missing, dead or corrupt."""
        if not fields:
            return None
        expires_name, meta_name, data_prefix = (
            _NAMES_BYTES if isinstance(next(iter(fields)), bytes) else _NAMES_TEXT
        )
        try:
            expires = float(fields.get(expires_name))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None  # a tombstone, or not a record
        if not expires > now:
            return None
        return self._record(key, fields, expires, fields.get(meta_name), data_prefix)

    def _decode_data(self, fields: Mapping[Any, Any], prefix: Any) -> tuple[dict[str, Any], int]:
        """Decode the ``d:`` fields of a hash; return the session data and its size in bytes.

        With a JSON serializer each value is parsed by one C call (:func:`value_scanner`); a
        value that does not parse whole (stray whitespace, NaN, corrupt) or holds a tag goes
        through ``loads``, whose verdict stands. The size adds up the raw fields, about their
        share of the JSON.
        """
        loads = self.serializer.loads
        scanner = self._scanner
        scan, marker = scanner if scanner is not None else (None, None)
        cut = len(prefix)
        binary = isinstance(prefix, bytes)
        data: dict[str, Any] = {}
        size = 2
        for raw_name, raw_value in fields.items():
            if raw_name[:cut] != prefix:
                continue
            size += (
                len(raw_name) + len(raw_value) + 2
                if binary
                else utf8_size(raw_name) + utf8_size(raw_value) + 2
            )
            name = raw_name[cut:].decode() if binary else raw_name[cut:]
            text = raw_value.decode() if binary else raw_value
            if scan is not None:
                try:
                    value, end = scan(text)  # one C call, no Python frame around it
                except ValueError:
                    end = -1
                if end == len(text) and (marker is None or marker not in text):
                    data[name] = value
                    continue
            data[name] = loads(text)  # not whole, corrupt, tagged or another serializer
        return data, size

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        """One ``MULTI``/``EXEC`` that writes the hash with its TTL; with *replaces*, one script.

        The script (``redis_create.lua``) moves the session only while the record under
        *replaces* is alive, atomically, and otherwise writes nothing: False. A record bound
        to a user is written by the script too, which indexes it in the same step; on a
        cluster the key enters the user's index first, one round trip more.
        """
        dumps = self.serializer.dumps
        mapping = {_DATA + name: dumps(value) for name, value in data.items()}
        mapping[_META] = dumps(dict(meta))
        mapping[_EXPIRES] = repr(float(expires))
        user = user_of(meta)
        if user is not None:
            mapping[_USER] = user
        target = self._key(key)
        ttl_ms = self._ttl_ms(expires, now)
        with self._errors():
            if replaces is None and user is None:
                self._write_record(target, mapping, ttl_ms)
                return True
            now_text = repr(float(now))
            args: list[Any] = [now_text, ttl_ms, user or ""]
            if not self._cluster:
                keys = [target] if replaces is None else [self._key(replaces), target]
                args.append("write" if replaces is None else "move")
                for pair in mapping.items():
                    args.extend(pair)
                return bool(self._evalsha(self._create_script, keys, args, write=True))
            return self._create_on_cluster(key, mapping, user, replaces, args, expires, now)

    def _write_record(self, target: str, mapping: Mapping[str, Any], ttl_ms: int) -> None:
        """Write an unbound record in one round trip: a transaction (in order on a cluster)."""
        pipe = self._write_pipeline()
        pipe.delete(target)
        pipe.hset(target, mapping=mapping)
        pipe.pexpire(target, ttl_ms)
        self._execute_write(pipe)

    def _create_on_cluster(
        self,
        key: str,
        mapping: dict[str, Any],
        user: str | None,
        replaces: str | None,
        args: list[Any],
        expires: float,
        now: float,
    ) -> bool:
        """create() on a cluster, whose records and indexes are in different slots.

        In this order: the new key enters its user's index (so a revocation that runs from
        here on finds it); the old record is taken (only one of two overlapping moves gets
        it; a failure after this logs the user out rather than leave two sessions); the new
        record is written, unless it moves a session of the same user and a revocation left its
        tombstone, while the old key leaves its user's index (one pipelined round trip).
        """
        target = self._key(key)
        if user is not None:
            self._index_add(user, key, expires, now)
        old_user: str | None = None
        if replaces is not None:
            taken = self._evalsha(self._create_script, [self._key(replaces)], [*args, "take"])
            if not taken:
                return False
            old_user = _text(taken[1]) or None
        leave: list[tuple[Any, str, list[Any]]] = []
        if old_user is not None and replaces is not None:
            leave.append((self._users_script, self._index(old_user), ["remove", "", replaces]))
        if user is None:
            self._write_record(target, mapping, args[1])
            if leave:
                self._cluster_scripts(leave)
            return True
        pairs = [item for pair in mapping.items() for item in pair]
        # Only a session of this same user moving to a new key must find no tombstone: a
        # login (from an anonymous session or another user's) that overlaps a revocation is
        # a login after it, as a new session's is.
        mode = "moved" if replaces is not None and old_user == user else "write"
        write = (self._create_script, target, [*args, mode, *pairs])
        # The old key leaves its index in the same pipelined round trip: its record is gone.
        return bool(self._cluster_scripts([write, *leave])[0])

    def _index(self, user: str) -> str:
        """The name of *user*'s index: the scripts name it alike (``redis.sha1hex``)."""
        digest = hashlib.sha1(user.encode(), usedforsecurity=False).hexdigest()
        return self._index_prefix + digest

    def _index_add(self, user: str, key: str, score: float, now: float) -> None:
        """Add *key* to *user*'s index (or raise its score): a cluster's first bound step."""
        args = ["add", repr(float(now)), key, repr(float(score))]
        self._evalsha(self._users_script, self._index(user), args)

    def save(self, key: str, changes: Changes, now: float) -> bool:
        """One ``EVALSHA``: the changes applied on the server only while the record is alive.

        A new meta that names another user (or none) moves the key between the indexes in the
        same script, and a new expiry of a bound session moves its score; on a cluster see
        :meth:`_save_on_cluster`.
        """
        dumps = self.serializer.dumps
        meta = changes.meta
        args: list[Any] = [
            repr(float(now)),
            repr(float(changes.expires)) if changes.expires is not None else "",
            self._ttl_ms(changes.expires, now) if changes.expires is not None else 0,
            dumps(dict(meta)) if meta is not None else "",
            len(changes.removals),
        ]
        args.extend(_DATA + name for name in changes.removals)
        args.append(len(changes.updates))
        for name, value in changes.updates.items():
            args.extend((_DATA + name, dumps(value)))
        args.append(len(changes.increments))
        for name, amount in changes.increments.items():
            args.extend((_DATA + name, _amount(amount)))
        if meta is not None:
            args.append(user_of(meta) or "")  # last: the script reads it with the new meta
        with self._errors():
            if self._cluster:
                return self._save_on_cluster(key, changes, args, now)
            return bool(self._evalsha(self._save_script, self.prefix + key, args, write=True))

    def _save_on_cluster(self, key: str, changes: Changes, args: list[Any], now: float) -> bool:
        """save() on a cluster, whose records and indexes are in different slots.

        A meta that binds the session to a user puts the key in that user's index first, one
        round trip (only ``set_user()`` and ``set_expiry()`` change the meta). A new expiry of
        a session bound as loaded sends its score to the index in the same pipelined round
        trip as the script. A key the meta unbinds stays in the old index, ignored, until
        trimmed: it cannot leave it safely while another request may bind it back.
        """
        name = self.prefix + key
        loaded = changes.loaded
        user = user_of(loaded.meta) if loaded is not None else None
        if changes.meta is not None:
            user = user_of(changes.meta)
            if user is not None:
                score = changes.expires if changes.expires is not None else None
                if score is None and loaded is not None:
                    score = loaded.expires
                if score is None:
                    stored = self.client.hget(name, _EXPIRES)
                    if stored is None:
                        return False
                    score = float(stored)
                self._index_add(user, key, score, now)
            return bool(self._evalsha(self._save_script, name, args))
        if user is None or changes.expires is None:
            return bool(self._evalsha(self._save_script, name, args))
        index_args = ["add", repr(float(now)), key, repr(float(changes.expires))]
        applied, _ = self._cluster_scripts(
            [(self._save_script, name, args), (self._users_script, self._index(user), index_args)]
        )
        return bool(applied)

    def _cluster_scripts(self, calls: list[tuple[Any, str, list[Any]]]) -> list[Any]:
        """Run scripts on keys of several slots in one pipelined round trip; their replies.

        Each runs on its own key's node, in parallel; a script a node does not know yet
        (NOSCRIPT) is loaded and run again, alone.
        """
        pipe = self.client.pipeline(transaction=False)
        for script, name, args in calls:
            # Named node: else the pipeline asks a node for the keys (COMMAND GETKEYS) first.
            node = self.client.get_node_from_key(name)
            pipe.execute_command("EVALSHA", script.sha, 1, name, *args, target_nodes=node)
        replies = list(pipe.execute(raise_on_error=False))
        for index, reply in enumerate(replies):
            if isinstance(reply, self._redis.exceptions.NoScriptError):
                script, name, args = calls[index]
                replies[index] = self._evalsha(script, name, args)
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def _evalsha(
        self, script: Any, name: str | list[str], args: list[Any], write: bool = False
    ) -> Any:
        """Run a registered *script* on the record *name* (or several): one ``EVALSHA``.

        Only when Redis answers NOSCRIPT (it restarted or flushed its scripts) is the script
        loaded and run again. Cheaper than calling the script object, which rebuilds its
        arguments and checks for a pipeline on every call. A *write* with :attr:`replicas`
        set is pipelined with its ``WAIT``.
        """
        keys = [name] if isinstance(name, str) else name
        if write and self.replicas:
            return self._evalsha_acknowledged(script, keys, args)
        client = self._fast
        try:
            return client.evalsha(script.sha, len(keys), *keys, *args)
        except self._redis.exceptions.NoScriptError:
            script.sha = client.script_load(script.script)
            return client.evalsha(script.sha, len(keys), *keys, *args)

    def delete(self, key: str) -> None:
        """One script (``redis_purge.lua``): the record goes, and leaves its user's index.

        On a cluster a bound record's key then leaves the index, one round trip more.
        """
        with self._errors():
            user = self._evalsha(self._purge_script, self._key(key), [""], write=True)
            if self._cluster and isinstance(user, (bytes, str)):
                self.client.zrem(self._index(_text(user)), key)

    def user_sessions(self, user_id: str, now: float) -> list[tuple[str, Record]]:
        """The user's live sessions: one script on a single node.

        On a cluster: one script reads (and trims) the index, one pipelined round trip reads
        the records from their nodes; a member whose record names another user is left out.
        """
        index = self._index(user_id)
        found: list[tuple[str, Record]] = []
        with self._errors():
            if not self._cluster:
                reply = self._evalsha(
                    self._users_script, index, ["list", repr(float(now)), user_id]
                )
                pairs: list[tuple[Any, Any]] = [
                    (reply[i], _fields(reply[i + 1])) for i in range(0, len(reply), 2)
                ]
            else:
                members = self._evalsha(self._users_script, index, ["members", repr(float(now))])
                pipe = self.client.pipeline(transaction=False)
                for member in members:
                    pipe.hgetall(self.prefix + _text(member))
                pairs = list(zip(members, pipe.execute(raise_on_error=False), strict=True))
        for member, fields in pairs:
            if not isinstance(fields, dict) or _text(_field(fields, _USER) or "") != user_id:
                continue
            key = _text(member)
            record = self._live_record(key, fields, now)
            if record is not None:
                found.append((key, record))
        return found

    def revoke_user(self, user_id: str, now: float, keep: str | None = None) -> int:
        """End every session of the user but *keep*: one script on a single node.

        On a cluster, round after round: read (and trim) the index, dropping the members the
        last round ended; end each new member in its own slot (``redis_revoke.lua``), all in
        one pipelined round trip, a member without a record getting a tombstone; stop when a
        reading shows nothing new. A session that moved to a new key meanwhile put that key
        in the index before it took the old record, so a round after the old record's is
        sure to see it; a create still in flight finds the tombstone and writes nothing.
        """
        index = self._index(user_id)
        now_text = repr(float(now))
        with self._errors():
            if not self._cluster:
                args = ["revoke", now_text, user_id, keep or ""]
                return int(self._evalsha(self._users_script, index, args, write=True))
            tombstone_ms = max(1, round(self.tombstone_seconds * 1000))
            handled: set[str] = set() if keep is None else {keep}
            ended = 0
            leaving: list[str] = []
            for _ in range(self.revoke_rounds):
                members = self._evalsha(self._users_script, index, ["members", now_text, *leaving])
                leaving = []
                fresh = [key for key in map(_text, members) if key not in handled]
                if not fresh:
                    break
                calls = [
                    (self._revoke_script, self.prefix + key, [user_id, now_text, tombstone_ms])
                    for key in fresh
                ]
                for key, outcome in zip(fresh, self._cluster_scripts(calls), strict=True):
                    handled.add(key)
                    ended += outcome == 2
                    if outcome > 0:  # a tombstoned member stays: a login may still come
                        leaving.append(key)
            if leaving:
                self._evalsha(self._users_script, index, ["members", now_text, *leaving])
        return ended

    # Writes the replicas acknowledge ----------------------------------------------------

    def _write_pipeline(self) -> Any:
        """A pipeline for one atomic write (create, destroy), sent in one round trip.

        A transaction (``MULTI``/``EXEC``), except on a cluster, where the commands go in order
        (a record is one key, so one slot; a cluster's regenerate takes the old record first).
        With :attr:`replicas`, ``MULTI`` is queued by hand, so that ``WAIT`` can follow
        ``EXEC`` on the same connection.
        """
        if self._cluster:
            return self.client.pipeline()
        if self.replicas:
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command("MULTI")
            return pipe
        return self.client.pipeline(transaction=True)

    def _execute_write(self, pipe: Any) -> list[Any]:
        """Send a :meth:`_write_pipeline`, with ``EXEC`` and ``WAIT`` when replicas must ack."""
        if not self.replicas:
            return list(pipe.execute())
        pipe.execute_command("EXEC")
        pipe.execute_command("WAIT", self.replicas, self._wait_ms)
        results = pipe.execute(raise_on_error=False)
        *replies, acknowledged = results
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        self._check_acknowledged(acknowledged)
        executed = replies[-1]
        for reply in executed if isinstance(executed, list) else ():
            if isinstance(reply, Exception):
                raise reply
        return list(executed)

    def _evalsha_acknowledged(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """``EVALSHA`` and ``WAIT`` in one round trip; NOSCRIPT loads the script and goes again."""
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.replicas, self._wait_ms)
            reply, acknowledged = pipe.execute(raise_on_error=False)
            if isinstance(reply, self._redis.exceptions.NoScriptError):
                script.sha = self.client.script_load(script.script)
                continue
            if isinstance(reply, Exception):
                raise reply
            self._check_acknowledged(acknowledged)
            return reply
        raise reply

    def _check_acknowledged(self, acknowledged: Any) -> None:
        """Raise when fewer than :attr:`replicas` replicas acknowledged the write in time."""
        if isinstance(acknowledged, Exception):
            raise acknowledged
        if int(acknowledged) >= self.replicas:
            return
        # After a Sentinel failover, pooled connections may still point at the old primary,
        # which has no replica left: drop the idle ones, so the next asks Sentinel again.
        pool = getattr(self.client, "connection_pool", None)
        if type(pool).__name__ == "SentinelConnectionPool":
            pool.disconnect(inuse_connections=False)  # type: ignore[union-attr]
        raise StoreUnavailableError(
            f"Redis at {self._where} applied a session write, but only {int(acknowledged)} of "
            f"the {self.replicas} replicas it must reach acknowledged it within "
            f"replica_timeout={self.replica_timeout}s, so a failover could lose it; it is "
            "reported as failed. Check the replicas (INFO replication) and their lag, or "
            "lower replicas="
        )

    def _primaries(self) -> list[Any]:
        """A plain client for each primary that holds records: every primary of a cluster.

        A plain client pointed at one node of a cluster would see that node's keys only and
        undercount in silence, so that is an error saying to use the cluster URL.
        """
        if self._cluster:
            return [self.client.get_redis_connection(n) for n in self.client.get_primaries()]
        try:
            info = self.client.info("cluster")
        except self._redis.exceptions.ResponseError:  # INFO refused (ACL): assume no cluster
            info = {}
        if str(info.get("cluster_enabled", "0")) == "1":
            raise StoreError(
                _NOT_A_CLUSTER_CLIENT.format(
                    where=self._where,
                    why="it has cluster mode on, so it holds only some of the sessions",
                )
            )
        return [self.client]

    def _scan(self, client: Any, indexes: bool = False) -> Iterator[list[Any]]:
        """Yield the record keys under the prefix on *client*'s server, :attr:`scan_batch` at
        a time; with *indexes*, the users' indexes instead."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + "*"
        index_prefix = self._index_prefix.encode()
        batch: list[Any] = []
        for name in client.scan_iter(match=pattern, count=self.scan_batch):
            raw = name if isinstance(name, bytes) else name.encode()
            if raw.startswith(index_prefix) != indexes:
                continue
            batch.append(name)
            if len(batch) >= self.scan_batch:
                yield batch
                batch = []
        if batch:
            yield batch

    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        """Delete the records that expired before *now* (Redis's TTL removes them later anyway).

        SCANs the prefix on every primary (each node of a cluster in turn) and checks each
        record's expiry on the server as it deletes it, so a session refreshed in the meantime
        stays; then trims every user's index of the members dead for longer than
        :attr:`ttl_margin`.
        """
        deleted = 0
        now_text = repr(float(now))
        with self._errors():
            for node in self._primaries():
                for batch in self._scan(node):
                    pipe = node.pipeline(transaction=False)
                    for name in batch:
                        self._purge_script(keys=[name], args=[now_text], client=pipe)
                    results = pipe.execute(raise_on_error=False)
                    deleted += sum(1 for result in results if result == 1)
                    if progress is not None:
                        progress(deleted)
                for batch in self._scan(node, indexes=True):
                    pipe = node.pipeline(transaction=False)
                    for name in batch:
                        self._users_script(keys=[name], args=["trim", now_text], client=pipe)
                    pipe.execute(raise_on_error=False)
        return deleted

    def count_expired(self, now: float) -> int:
        """SCAN the prefix on every primary: count the records whose expiry passed but that
        Redis still keeps."""
        expired = 0
        with self._errors():
            for node, batch in ((n, b) for n in self._primaries() for b in self._scan(n)):
                pipe = node.pipeline(transaction=False)
                for name in batch:
                    pipe.hget(name, _EXPIRES)
                for stored in pipe.execute(raise_on_error=False):
                    try:
                        expired += float(stored) <= now  # as purge's script decides
                    except (TypeError, ValueError):
                        continue  # no expiry field: not one of ours, or another type
        return expired

    def stats(self, now: float) -> StoreStats:
        """SCAN the prefix on every primary: count the live records and the bytes of their values.

        Also warns when Redis may evict keys (an evicting ``maxmemory-policy``), which logs
        users out in silence.
        """
        sessions = size = 0
        with self._errors():
            nodes = self._primaries()
            _warn_evicting(nodes[0], self._where)
            for node, batch in ((n, b) for n in nodes for b in self._scan(n)):
                pipe = node.pipeline(transaction=False)
                for name in batch:
                    pipe.hgetall(name)
                for fields in pipe.execute(raise_on_error=False):
                    if not isinstance(fields, dict):
                        continue  # not one of ours (another type under the prefix)
                    live, nbytes = _measure(fields, now)
                    if live:
                        sessions += 1
                        size += nbytes
        return StoreStats(sessions, size)

    def close(self) -> None:
        """Close the connection pool, unless the client was handed in ready-made."""
        if self._owns_client:
            if self._lean is not None:
                self._lean.close()
            self.client.close()


_NOT_A_CLUSTER_CLIENT = (
    "Redis at {where} is a node of a Redis Cluster ({why}): this is a cluster, so use "
    "redis+cluster://host:port,host:port/ (or hand the store a RedisCluster client) instead of "
    "a plain redis:// URL"
)


class _Failures:
    """Turns redis-py failures into store errors that say what to check (never an id).

    A plain class, not ``@contextmanager``: it guards two calls per request, and a generator
    costs more to enter and leave. It holds no state, so one instance serves every call.
    Cluster errors, which redis-py does not all derive from ``RedisError``, are mapped too.
    """

    __slots__ = ("_redis", "_where", "_prefix", "_cluster")

    def __init__(self, redis: Any, where: str, prefix: str, cluster: bool = False) -> None:
        self._redis = redis
        self._where = where
        self._prefix = prefix
        self._cluster = cluster

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        redis = self._redis
        if exc is None:
            return
        errors = redis.exceptions
        if not isinstance(exc, (redis.RedisError, errors.RedisClusterException)):
            return
        raise _store_error(errors, exc, self._where, self._prefix, self._cluster) from exc


def _store_error(
    errors: Any, exc: BaseException, where: str, prefix: str, cluster: bool
) -> StoreError:
    """The store error for a redis-py failure, with the hint that fits it."""
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, errors.AskError) and not cluster:  # MOVED or ASK to a plain client
        return StoreError(_NOT_A_CLUSTER_CLIENT.format(where=where, why=f"it answered {exc}"))
    if isinstance(exc, (errors.ClusterError, errors.SlotNotCoveredError, errors.TryAgainError)):
        return StoreUnavailableError(
            f"Redis Cluster at {where} cannot serve the session's slot now ({what}); a primary "
            "is down or a failover or resharding is under way: check CLUSTER INFO and "
            "CLUSTER NODES on its nodes (every slot needs a primary)"
        )
    if isinstance(exc, errors.AuthenticationError):
        return StoreUnavailableError(
            f"Redis at {where} refused the store's credentials ({what}); check the user and "
            "password in the store URL (redis://user:password@host:6379/0, or "
            "redis://:password@host:6379/0 for the default user) against the server's "
            "requirepass or ACL users"
        )
    if isinstance(exc, errors.NoPermissionError):
        return StoreError(
            f"Redis at {where} does not let the store's user run a session command ({what}); "
            "allow the store's commands on its keys in the user's ACL: ACL SETUSER name "
            f"~{prefix}* +@hash +@sortedset +@keyspace +@scripting +@transaction +@connection"
        )
    if str(exc).startswith("DB index is out of range"):
        return StoreError(
            f"Redis at {where} has no such database ({what}); end the store URL with a "
            "database number below the server's databases setting (16 by default), such as "
            "redis://host:6379/0"
        )
    if isinstance(exc, (errors.ConnectionError, errors.TimeoutError)):
        return StoreUnavailableError(
            f"Redis at {where} could not be reached or did not answer in time "
            f"({what}); check that the server is running and reachable "
            "from here, and the store URL, password and socket_timeout"
        )
    if isinstance(exc, errors.RedisClusterException):
        return StoreUnavailableError(
            f"the Redis Cluster client for {where} failed ({what}); check that the nodes in "
            "the URL are reachable and are cluster nodes (CLUSTER INFO), and the password"
        )
    if isinstance(exc, errors.OutOfMemoryError):
        return StoreError(
            f"Redis at {where} is out of memory and refuses writes ({what}): it has reached "
            "its maxmemory. Raise maxmemory or free memory; keep maxmemory-policy noeviction "
            "for sessions, as an evicting policy deletes live sessions and logs users out"
        )
    if isinstance(exc, errors.ReadOnlyError):
        return StoreError(
            f"Redis at {where} is a read-only replica ({what}); point the store at the "
            "primary, or at Sentinel (redis+sentinel://host:26379/service) so that it follows "
            "failovers"
        )
    if str(exc).startswith("NOREPLICAS"):
        return StoreUnavailableError(
            f"Redis at {where} refused the write: fewer replicas are in step than its "
            f"min-replicas-to-write ({what}); check the replicas (INFO replication) and "
            "min-replicas-max-lag"
        )
    return StoreError(
        f"Redis at {where} refused a session command ({what}); check that the server is a "
        f"writable primary and that nothing else writes keys under the prefix {prefix!r}"
    )


def _client_options(socket_timeout: float, connect_timeout: float | None) -> dict[str, Any]:
    """redis-py options for a client built from a URL: short timeouts and no retries."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout if connect_timeout is None else connect_timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # redis-py before 7 has no maintenance notifications
        pass
    else:
        # With them on, redis-py skips its check that a pooled connection is still open, and
        # the first request after a Redis restart would fail instead of reconnecting.
        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    return options


def _describe(client: Any) -> str:
    """Where the client points, for error messages: host:port/db or the socket path, no password."""
    if type(client).__name__ == "RedisCluster":
        nodes = sorted(node.name for node in client.get_nodes())
        return "cluster " + ",".join(nodes[:3]) + (",…" if len(nodes) > 3 else "")
    pool = getattr(client, "connection_pool", None)
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"Sentinel service {service!r}"
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {}) or {}
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    if "host" in kwargs:
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return type(client).__name__


#: URL parameters that are store options, not redis-py's.
_STORE_PARAMETERS = ("replicas", "replica_timeout")
_URL_HELP = (
    "use redis://[:password@]host:6379/0, rediss://… for TLS, unix:///path/redis.sock, "
    "redis+cluster://host:port,host:port/ or redis+sentinel://host:26379,host:26379/service?db=0"
)


def _store_parameters(url: str) -> dict[str, str]:
    """The store's own URL parameters (``replicas``, ``replica_timeout``), not redis-py's."""
    from urllib.parse import parse_qsl

    query = url.partition("?")[2]
    return {k: v for k, v in parse_qsl(query, keep_blank_values=True) if k in _STORE_PARAMETERS}


def _client_from_url(url: str, options: dict[str, Any]) -> tuple[Any, str | None]:
    """Build the redis-py client a store URL names; return it and where it points."""
    from urllib.parse import parse_qsl, urlencode

    import redis

    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    base, _, query = rest.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    theirs = [(name, value) for name, value in params if name not in _STORE_PARAMETERS]
    try:
        if scheme in ("redis+cluster", "rediss+cluster"):
            return _cluster_client(redis, scheme, base, dict(theirs), options)
        if scheme in ("redis+sentinel", "rediss+sentinel"):
            return _sentinel_client(redis, scheme, base, dict(theirs), options)
        if scheme in ("redis", "rediss"):
            db = base.rpartition("@")[2].partition("/")[2].strip("/")
            if db and not db.isdigit():  # redis-py would quietly use database 0
                raise ConfigurationError(
                    f"the database {db!r} in the Redis URL is not a number; {_URL_HELP}"
                )
        plain = f"{scheme}://{base}" + (f"?{urlencode(theirs)}" if theirs else "")
        return redis.Redis.from_url(plain, **options), None
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"the Redis URL cannot be used ({exc}); {_URL_HELP}") from exc


_HOST = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]/]+))(?::(?P<port>\d+))?")


def _hosts(netloc: str, default_port: int) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """Split ``[user[:password]@]host:port,host:port`` into the credentials and the hosts."""
    from urllib.parse import unquote

    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    found: list[tuple[str, int]] = []
    for item in hosts.split(","):
        match = _HOST.fullmatch(item.strip())
        if match is None:
            raise ConfigurationError(f"{item!r} is not host:port; {_URL_HELP}")
        port = int(match["port"] or default_port)
        found.append((match["v6"] or match["host"], port))
    return username, password, found


def _no_other_parameters(params: dict[str, str], allowed: tuple[str, ...], kind: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        accepted = ", ".join((*allowed, *_STORE_PARAMETERS))
        raise ConfigurationError(
            f"{kind} URL parameter {unknown[0]!r} is not known; the accepted ones are {accepted}"
        )


def _cluster_client(
    redis: Any, scheme: str, base: str, params: dict[str, str], options: dict[str, Any]
) -> tuple[Any, str]:
    """A ``RedisCluster`` on the startup nodes of a ``redis+cluster://`` URL."""
    netloc, _, path = base.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ConfigurationError(
            f"a Redis Cluster has database 0 only, not {path.strip('/')!r}; end the URL with / "
            "(redis+cluster://host:port,host:port/)"
        )
    _no_other_parameters(params, (), "a redis+cluster://")
    username, password, hosts = _hosts(netloc, 6379)
    where = "cluster " + ",".join(f"{host}:{port}" for host, port in hosts)
    # RedisCluster retries on a timeout by itself, and warns when told to: the retry= of no
    # retries covers it.
    options = {name: value for name, value in options.items() if name != "retry_on_timeout"}
    try:
        client = redis.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in hosts],
            username=username,
            password=password,
            ssl=scheme.startswith("rediss"),
            **options,
        )
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise _store_error(redis.exceptions, exc, where, "", True) from exc
    return client, where


def _sentinel_client(
    redis: Any, scheme: str, base: str, params: dict[str, str], options: dict[str, Any]
) -> tuple[Any, str]:
    """The primary of a Sentinel service, from a ``redis+sentinel://`` URL."""
    netloc, _, path = base.partition("/")
    service = path.strip("/")
    if not service or "/" in service:
        raise ConfigurationError(
            "a Sentinel URL names its service after the hosts: "
            "redis+sentinel://host:26379,host:26379/service?db=0"
        )
    _no_other_parameters(
        params, ("db", "sentinel_username", "sentinel_password"), "a redis+sentinel://"
    )
    db = params.get("db", "0")
    if not db.isdigit():
        raise ConfigurationError(f"db={db!r} must be a database number, e.g. ?db=0")
    username, password, hosts = _hosts(netloc, 26379)
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
    }
    if "sentinel_password" in params:
        sentinel_kwargs["password"] = params["sentinel_password"]
        sentinel_kwargs["username"] = params.get("sentinel_username") or None
    sentinel = redis.Sentinel(hosts, sentinel_kwargs=sentinel_kwargs)
    client = sentinel.master_for(
        service,
        db=int(db),
        username=username,
        password=password,
        ssl=scheme.startswith("rediss"),
        **options,
    )
    where = f"Sentinel service {service!r} (via {','.join(f'{h}:{p}' for h, p in hosts)})"
    return client, where


def _replicas(given: int | None, text: str | None) -> int:
    """The ``replicas`` option, from the keyword or else the URL parameter."""
    value: Any = given if given is not None else (text if text is not None else 0)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or isinstance(value, (bool, float)):
        raise ConfigurationError(
            f"replicas={value!r} must be 0 (no WAIT) or how many replicas must acknowledge "
            "each write, e.g. 1"
        )
    return number


def _replica_timeout(given: float | None, text: str | None, socket_timeout: float) -> float:
    """The ``replica_timeout`` option: keyword, else URL parameter, else half socket_timeout."""
    value: Any = given if given is not None else text
    if value is None:
        return socket_timeout / 2
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not 0 < seconds < socket_timeout:
        raise ConfigurationError(
            f"replica_timeout={value!r} must be a positive number of seconds below "
            f"socket_timeout={socket_timeout} (WAIT must answer before the socket times out)"
        )
    return seconds


def _warn_evicting(client: Any, where: str) -> None:
    """Log a warning when Redis may evict keys: with an evicting policy, sessions vanish."""
    try:
        policy = client.info("memory").get("maxmemory_policy")
    except Exception:  # INFO refused (ACL) or unknown: nothing to say
        return
    if policy and policy != "noeviction":
        logger.warning(
            "Redis at %s has maxmemory-policy %s: at maxmemory it deletes keys, live sessions "
            "included (every session key has a TTL, so volatile-* policies evict them too), "
            "which logs users out in silence; set maxmemory-policy noeviction",
            where,
            policy,
        )


def _amount(amount: int | float) -> str:
    """An increment as the script reads it: digits for an int, a float with a point or exponent."""
    if isinstance(amount, int):
        return str(amount)
    text = repr(float(amount))
    return text if any(c in text for c in ".en") else text + ".0"


def _measure(fields: Mapping[Any, Any], now: float) -> tuple[bool, int]:
    """Tell whether a hash is a live record and how many bytes its values take."""
    size = 0
    expires: float | None = None
    for raw_name, raw_value in fields.items():
        name = raw_name.decode("utf-8", "replace") if isinstance(raw_name, bytes) else raw_name
        if name == _EXPIRES:
            try:
                expires = float(raw_value)
            except ValueError:
                return False, 0
        elif name.startswith(_DATA):
            size += len(raw_value) if isinstance(raw_value, bytes) else len(raw_value.encode())
    return expires is not None and expires > now, size


def _lua_text(text: str) -> str:
    """*text* as a Lua string literal, every byte escaped, so any prefix is safe in a script."""
    return '"' + "".join(f"\\{byte}" for byte in text.encode()) + '"'


def _text(value: Any) -> str:
    """A reply's bulk string as str, from a client that decodes responses or one that does not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(flat: list[Any]) -> dict[Any, Any]:
    """A hash as a script returns it (a flat list of names and values) as a dict."""
    items = iter(flat)
    return dict(zip(items, items, strict=False))


def _field(fields: Mapping[Any, Any], name: str) -> Any:
    """The value of field *name* in a reply's hash, whether its names are bytes or str."""
    value = fields.get(name.encode())
    return fields.get(name) if value is None else value


def _tombstone(fields: Mapping[Any, Any]) -> bool:
    """Tell whether a hash is a cluster revocation's tombstone: no session lives there."""
    return _field(fields, _TOMBSTONE) is not None
