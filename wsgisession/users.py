"""A user's sessions: list them, end them, with or without a request.

Stores keep only a hash of each session id, so finding "every session of user 42" needs an
index that the stores keep themselves (see :class:`~wsgisession.stores.base.Store`). This
module turns what a store returns into :class:`~wsgisession.session.SessionInfo` and gives
the core the ``UserIndex`` (:mod:`wsgisession.session`) a session uses::

    from wsgisession import revoke_user, user_sessions

    for info in user_sessions(store, "42"):
        print(info.handle, info.last_seen, info.info.get("agent"))
    ended = revoke_user(store, "42")  # after a password reset: every session of 42 ends

A session stays in its user's list until it ends (logout, expiry, revocation); the binding
is in the record's meta (:data:`~wsgisession.records.USER`), written by ``set_user()``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .errors import NoUserIndexError
from .policy import CREATED, LIFETIME, read_meta
from .records import INFO, Record, check_user_id
from .session import SessionInfo
from .signing import hash_id, session_handle
from .stores.base import ClientSideStore, Store

__all__ = ["ClientSideUsers", "StoreUsers", "revoke_user", "session_info", "user_sessions"]

#: The middleware's default idle timeout, for listing sessions without a middleware at hand.
DEFAULT_MAX_AGE = 1209600


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def session_info(
    key: str, record: Record, max_age: int, now: float, current: bool = False
) -> SessionInfo:
    """Describe the session stored under *key* as a user's session list shows it.

    ``last_seen`` is the stored expiry less the session's idle timeout (its own from
    ``set_expiry()``, else *max_age*), never before its creation; the current session was
    seen *now*.
    """
    meta = read_meta(record.meta)  # a 0.1.0 record names its bookkeeping c, t, b
    created = meta.get(CREATED)
    lifetime = meta.get(LIFETIME)
    if not (isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime > 0):
        lifetime = max_age
    seen = record.expires - lifetime
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        seen = max(seen, float(created))
    else:
        created = seen
    if current:
        seen = now
    info = meta.get(INFO)
    return SessionInfo(
        handle=session_handle(key),
        created=_utc(float(created)),
        last_seen=_utc(min(seen, now)),
        expires=_utc(record.expires),
        current=current,
        info=dict(info) if isinstance(info, dict) else {},
    )


def _refuse_client_side(store: ClientSideStore, what: str) -> NoUserIndexError:
    return NoUserIndexError(
        f"{type(store).__name__} keeps each session in its cookie, with no server state, so "
        f"it cannot {what}: a copy a browser kept stays valid until its sealed expiry. "
        "Revocation needs sessions on the server: use SqliteStore, RedisStore or PostgresStore"
    )


class StoreUsers:
    """The :class:`~wsgisession.session.UserIndex` of a server-side store, for the core."""

    __slots__ = ("_store", "_clock", "_max_age")

    def __init__(self, store: Store, clock: Callable[[], float], max_age: int) -> None:
        self._store = store
        self._clock = clock
        self._max_age = max_age

    def handle_of(self, session_id: str) -> str:
        """The handle of the session *session_id*."""
        return session_handle(hash_id(session_id))

    def sessions(self, user_id: str, current_id: str | None) -> list[SessionInfo]:
        """The live sessions of *user_id*, oldest first, *current_id*'s marked current."""
        now = self._clock()
        current = hash_id(current_id) if current_id is not None else None
        found = self._store.user_sessions(user_id, now)
        infos = [
            session_info(key, record, self._max_age, now, key == current) for key, record in found
        ]
        infos.sort(key=lambda info: (info.created, info.handle))
        return infos

    def revoke_others(self, user_id: str, keep_id: str | None) -> int:
        """End every session of *user_id* but *keep_id*'s; return how many ended."""
        keep = hash_id(keep_id) if keep_id is not None else None
        return self._store.revoke_user(user_id, self._clock(), keep=keep)

    def revoke(self, user_id: str, handle: str) -> bool:
        """End the session of *user_id* named by *handle*; return whether there was one."""
        given = handle.encode("utf-8", "surrogatepass")
        for key, _record in self._store.user_sessions(user_id, self._clock()):
            if hmac.compare_digest(session_handle(key).encode(), given):
                self._store.delete(key)
                return True
        return False


class ClientSideUsers:
    """The user index of a client-side store: there is none, and every call says why."""

    __slots__ = ("_store",)

    def __init__(self, store: ClientSideStore) -> None:
        self._store = store

    def handle_of(self, session_id: str) -> str:
        """Refuse: a client-side store keeps no sessions to name."""
        raise _refuse_client_side(self._store, "name its sessions")

    def sessions(self, user_id: str, current_id: str | None) -> list[SessionInfo]:
        """Refuse: nothing on the server lists the sessions."""
        raise _refuse_client_side(self._store, "list a user's sessions")

    def revoke_others(self, user_id: str, keep_id: str | None) -> int:
        """Refuse: nothing on the server can end a session."""
        raise _refuse_client_side(self._store, "end a user's sessions")

    def revoke(self, user_id: str, handle: str) -> bool:
        """Refuse: nothing on the server can end a session."""
        raise _refuse_client_side(self._store, "end a user's session")


def _server_store(store: Any, what: str) -> Store:
    if isinstance(store, ClientSideStore):
        raise _refuse_client_side(store, what)
    if not isinstance(store, Store):
        raise TypeError(
            f"{what}: store={store!r} is not a wsgisession Store; pass the store the "
            "middleware uses (e.g. SqliteStore(path), RedisStore(url), PostgresStore(dsn)), "
            "or store_from_url(url)"
        )
    return store


def user_sessions(
    store: Store | ClientSideStore,
    user_id: str,
    *,
    max_age: int = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> list[SessionInfo]:
    """List the live sessions of *user_id* in *store*, oldest first, without a request.

    None is ``current``. *max_age* is the middleware's idle timeout, from which
    ``last_seen`` is derived (give yours if it is not the default 14 days); *now* defaults
    to ``time.time()``.
    """
    server = _server_store(store, "list a user's sessions")
    check_user_id(user_id, "user_sessions")
    moment = time.time() if now is None else now
    found = server.user_sessions(user_id, moment)
    infos = [session_info(key, record, max_age, moment) for key, record in found]
    infos.sort(key=lambda info: (info.created, info.handle))
    return infos


def revoke_user(store: Store | ClientSideStore, user_id: str, *, now: float | None = None) -> int:
    """End every session of *user_id* in *store*; return how many ended.

    For scripts, admin tools and password resets: every later request of those sessions
    finds none, and no request in flight brings one back.
    """
    server = _server_store(store, "end a user's sessions")
    check_user_id(user_id, "revoke_user")
    return server.revoke_user(user_id, time.time() if now is None else now)
