"""RedisStore: sessions in Redis, shared by every worker on every machine that reaches it.

One hash per session, under ``prefix + key`` (the key is the SHA-256 of the id, never the id):

* ``d:<name>`` holds the JSON of the session key ``<name>``; the ``d:`` prefix means a user's
  key can never collide with the two bookkeeping fields below;
* ``@m`` holds the session metadata as JSON;
* ``@e`` holds the expiry, in seconds since the epoch of the middleware's clock.

Loading is one plain ``HGETALL``; the expiry is checked in Python with the caller's ``now``, and
only a record found dead costs a second call, which deletes it on the server unless another
worker refreshed it in between. Saving is one ``EVALSHA`` of a small Lua script that,
atomically on the server, checks the record is still alive for the caller's ``now`` (no
resurrection), deletes the removed fields, sets the changed ones, adds the increments and moves
the expiry. Creating is one ``MULTI``/``EXEC``, which also deletes the record a regenerated
session replaces. So each is exactly one round trip (after a server restart, the first save
gets NOSCRIPT and loads the script once).

Redis's own TTL is only a safety net: it is set to the remaining lifetime *as the caller's clock
sees it* plus :attr:`RedisStore.ttl_margin`, so Redis forgets dead sessions by itself while
every expiry decision still follows the middleware's clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError, MissingDriverError, StoreError, StoreUnavailableError
from ..serializers import JSONSerializer, Serializer
from ..signing import log_id
from ._redis_lean import LeanClient, lean_client_for
from .base import Changes, Record, Store, StoreStats, logger

__all__ = ["RedisStore"]

_DATA = "d:"
_META = "@m"
_EXPIRES = "@e"
#: The field names as a reply spells them: bytes, or str from a client with decode_responses.
_NAMES_BYTES = (_EXPIRES.encode(), _META.encode(), _DATA.encode())
_NAMES_TEXT = (_EXPIRES, _META, _DATA)
#: Parses one JSON value with its end position, so a value needs no Python-level wrapper.
_raw_decode = json.JSONDecoder().raw_decode

# ARGV: now, expires ('' keeps it), ttl_ms, meta ('' keeps it),
#       n_removals, field..., n_updates, (field, json)..., n_increments, (field, amount)...
# Increments are computed before anything is written, so a bad one changes nothing.
_SAVE_SCRIPT = """
local key = KEYS[1]
local stored = tonumber(redis.call('HGET', key, '@e'))
if stored == nil then return 0 end
if stored <= tonumber(ARGV[1]) then
  redis.call('DEL', key)
  return 0
end
local i = 5
local removed = {}
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do removed[ARGV[i]] = true; i = i + 1 end
local updates_at = i + 1
n = tonumber(ARGV[i]); i = i + 1 + 2 * n
local increments = {}
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local field, amount = ARGV[i], ARGV[i + 1]
  i = i + 2
  local current, number = false, nil
  if not removed[field] then current = redis.call('HGET', key, field) end
  if current then number = tonumber(current) end
  if string.match(amount, '^-?%d+$') and (number == nil or string.match(current, '^-?%d+$')) then
    increments[#increments + 1] = {field, amount, number == nil}
  else
    local result = (number or 0) + tonumber(amount)
    if result ~= result or result == math.huge or result == -math.huge then
      return redis.error_reply('increment of ' .. field .. ' gives a number JSON cannot hold')
    end
    local text = string.format('%.17g', result)
    if not string.find(text, '[%.eEn]') then text = text .. '.0' end
    increments[#increments + 1] = {field, text, nil}
  end
end
for field in pairs(removed) do redis.call('HDEL', key, field) end
i = updates_at
n = tonumber(ARGV[updates_at - 1])
for _ = 1, n do redis.call('HSET', key, ARGV[i], ARGV[i + 1]); i = i + 2 end
for _, inc in ipairs(increments) do
  if inc[3] == nil then
    redis.call('HSET', key, inc[1], inc[2])
  else
    if inc[3] then redis.call('HSET', key, inc[1], '0') end
    redis.call('HINCRBY', key, inc[1], inc[2])
  end
end
if ARGV[4] ~= '' then redis.call('HSET', key, '@m', ARGV[4]) end
if ARGV[2] ~= '' then
  redis.call('HSET', key, '@e', ARGV[2])
  redis.call('PEXPIRE', key, ARGV[3])
end
return 1
"""

# Deletes one record when it expired before ARGV[1]; used by purge, key by key, and by a load
# that found the record dead, so a session refreshed in between is left alone.
_PURGE_SCRIPT = """
local stored = tonumber(redis.call('HGET', KEYS[1], '@e'))
if stored ~= nil and stored <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class RedisStore(Store):
    """Sessions in Redis: one hash per session, one round trip to load and one to save.

    :param url_or_client: a ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL, or a ready
        redis-py client (``Redis``, a Sentinel ``master_for(...)`` client, ``RedisCluster``),
        which is then used as it is, timeouts included, and not closed by :meth:`close`.
    :param prefix: put before every key, so several applications can share one database.
    :param socket_timeout: seconds to wait for Redis to answer before the store reports itself
        unavailable (a 503 by default), well under a worker timeout; for URLs only.
    :param connect_timeout: seconds to wait for a connection; ``socket_timeout`` by default.
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

    def __init__(
        self,
        url_or_client: Any,
        prefix: str = "wsgisession:",
        *,
        socket_timeout: float = 2.0,
        connect_timeout: float | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(serializer)
        try:
            import redis
        except ImportError as exc:
            raise MissingDriverError(
                "RedisStore needs the redis-py driver: pip install 'sessions-wsgi[redis]'"
            ) from exc
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
        if isinstance(url_or_client, str):
            try:
                self.client: Any = redis.Redis.from_url(
                    url_or_client, **_client_options(socket_timeout, connect_timeout)
                )
            except ValueError as exc:
                raise ConfigurationError(
                    f"the Redis URL cannot be used ({exc}); use redis://[:password@]host:6379/0, "
                    "rediss://… for TLS or unix:///path/redis.sock"
                ) from exc
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
        self._save_script = self.client.register_script(_SAVE_SCRIPT)
        self._purge_script = self.client.register_script(_PURGE_SCRIPT)
        self._where = _describe(self.client)
        self._failures = _Failures(redis, self._where, prefix)

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, prefix={self.prefix!r})"

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
                _warn_corrupt(key)
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
            _warn_corrupt(key)
            return None
        if not expires > now:
            with self._errors():
                self._evalsha(self._purge_script, name, [repr(float(now))])
            return None
        try:
            meta = None if raw_meta is None else self.serializer.loads(raw_meta)
            data, size = self._decode_data(fields, data_prefix)
        except (ValueError, TypeError, UnicodeDecodeError):
            _warn_corrupt(key)
            return None
        if not isinstance(meta, dict):
            _warn_corrupt(key)
            return None
        return Record(data, meta, expires, size=size)

    def _decode_data(self, fields: Mapping[Any, Any], prefix: Any) -> tuple[dict[str, Any], int]:
        """Decode the ``d:`` fields of a hash; return the session data and its size in bytes.

        With the default JSON serializer each value is parsed by one C call, and only a value
        that does not parse whole (stray whitespace, or corrupt) goes through ``loads``, whose
        verdict stands. The size adds up the raw fields, about their share of the JSON.
        """
        loads = self.serializer.loads
        raw_decode = _raw_decode if type(self.serializer) is JSONSerializer else None
        cut = len(prefix)
        binary = isinstance(prefix, bytes)
        data: dict[str, Any] = {}
        size = 2
        for raw_name, raw_value in fields.items():
            if raw_name[:cut] != prefix:
                continue
            size += len(raw_name) + len(raw_value) + 2
            text = raw_value.decode() if binary else raw_value
            name = raw_name[cut:].decode() if binary else raw_name[cut:]
            if raw_decode is None:
                data[name] = loads(text)
                continue
            try:
                value, end = raw_decode(text)
            except ValueError:
                end = -1
            data[name] = value if end == len(text) else loads(text)
        return data, size

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> None:
        """One ``MULTI``/``EXEC``: the hash written with its TTL, the replaced record deleted."""
        dumps = self.serializer.dumps
        mapping = {_DATA + name: dumps(value) for name, value in data.items()}
        mapping[_META] = dumps(dict(meta))
        mapping[_EXPIRES] = repr(float(expires))
        target = self._key(key)
        with self._errors():
            # A cluster cannot run one transaction over two slots: write the new record first,
            # so a failure in between leaves the old session alive rather than losing it.
            if self._cluster:
                pipe = self.client.pipeline()
            else:
                pipe = self.client.pipeline(transaction=True)
            pipe.delete(target)
            pipe.hset(target, mapping=mapping)
            pipe.pexpire(target, self._ttl_ms(expires, now))
            if replaces is not None:
                pipe.delete(self._key(replaces))
            pipe.execute()

    def save(self, key: str, changes: Changes, now: float) -> bool:
        """One ``EVALSHA``: the changes applied on the server only while the record is alive."""
        dumps = self.serializer.dumps
        args: list[Any] = [
            repr(float(now)),
            repr(float(changes.expires)) if changes.expires is not None else "",
            self._ttl_ms(changes.expires, now) if changes.expires is not None else 0,
            dumps(dict(changes.meta)) if changes.meta is not None else "",
            len(changes.removals),
        ]
        args.extend(_DATA + name for name in changes.removals)
        args.append(len(changes.updates))
        for name, value in changes.updates.items():
            args.extend((_DATA + name, dumps(value)))
        args.append(len(changes.increments))
        for name, amount in changes.increments.items():
            args.extend((_DATA + name, _amount(amount)))
        with self._errors():
            return bool(self._evalsha(self._save_script, self.prefix + key, args))

    def _evalsha(self, script: Any, name: str, args: list[Any]) -> Any:
        """Run a registered *script* on the record *name*: one ``EVALSHA``.

        Only when Redis answers NOSCRIPT (it restarted or flushed its scripts) is the script
        loaded and run again. Cheaper than calling the script object, which rebuilds its
        arguments and checks for a pipeline on every call.
        """
        client = self._fast
        try:
            return client.evalsha(script.sha, 1, name, *args)
        except self._redis.exceptions.NoScriptError:
            script.sha = client.script_load(script.script)
            return client.evalsha(script.sha, 1, name, *args)

    def delete(self, key: str) -> None:
        """One ``DEL``."""
        with self._errors():
            self.client.delete(self._key(key))

    def _scan(self) -> Iterator[list[Any]]:
        """Yield the keys under the prefix in batches of about :attr:`scan_batch`."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + "*"
        batch: list[Any] = []
        for name in self.client.scan_iter(match=pattern, count=self.scan_batch):
            batch.append(name)
            if len(batch) >= self.scan_batch:
                yield batch
                batch = []
        if batch:
            yield batch

    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        """Delete the records that expired before *now* (Redis's TTL removes them later anyway).

        SCANs the prefix and checks each record's expiry on the server as it deletes it, so
        a session refreshed in the meantime stays.
        """
        deleted = 0
        with self._errors():
            for batch in self._scan():
                pipe = self.client.pipeline(transaction=False)
                for name in batch:
                    self._purge_script(keys=[name], args=[repr(float(now))], client=pipe)
                results = pipe.execute(raise_on_error=False)
                deleted += sum(1 for result in results if result == 1)
                if progress is not None:
                    progress(deleted)
        return deleted

    def count_expired(self, now: float) -> int:
        """SCAN the prefix: count the records whose expiry passed but that Redis still keeps."""
        expired = 0
        with self._errors():
            for batch in self._scan():
                pipe = self.client.pipeline(transaction=False)
                for name in batch:
                    pipe.hget(name, _EXPIRES)
                for stored in pipe.execute(raise_on_error=False):
                    try:
                        expired += float(stored) <= now  # as purge's script decides
                    except (TypeError, ValueError):
                        continue  # no expiry field: not one of ours, or another type
        return expired

    def stats(self, now: float) -> StoreStats:
        """SCAN the prefix: count the live records and the bytes of their values."""
        sessions = size = 0
        with self._errors():
            for batch in self._scan():
                pipe = self.client.pipeline(transaction=False)
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


class _Failures:
    """Turns redis-py failures into store errors that say what to check (never an id).

    A plain class, not ``@contextmanager``: it guards two calls per request, and a generator
    costs more to enter and leave. It holds no state, so one instance serves every call.
    """

    __slots__ = ("_redis", "_where", "_prefix")

    def __init__(self, redis: Any, where: str, prefix: str) -> None:
        self._redis = redis
        self._where = where
        self._prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        redis = self._redis
        if exc is None or not isinstance(exc, redis.RedisError):
            return
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            raise StoreUnavailableError(
                f"Redis at {self._where} could not be reached or did not answer in time "
                f"({type(exc).__name__}: {exc}); check that the server is running and reachable "
                "from here, and the store URL, password and socket_timeout"
            ) from exc
        raise StoreError(
            f"Redis at {self._where} refused a session command ({type(exc).__name__}: "
            f"{exc}); check that the server is a writable primary and that nothing else "
            f"writes keys under the prefix {self._prefix!r}"
        ) from exc


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
    pool = getattr(client, "connection_pool", None)
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {}) or {}
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    if "host" in kwargs:
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return type(client).__name__


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


def _warn_corrupt(key: str) -> None:
    logger.warning(
        "session %s: stored record is corrupt and was ignored; a fresh session starts",
        log_id(key),
    )
