"""The store contract: what every session store, ours or a user's, must do.

A store keeps records under *keys*. A key is the SHA-256 of a session id, never the id itself,
so stores cannot leak live sessions. Stores know nothing of HTTP, cookies or WSGI. Every time
comes in as an argument (``now``), so expiry follows the middleware's one clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..errors import NoUserIndexError
from ..records import Changes, Record
from ..serializers import JSONSerializer, Serializer
from ._support import warn_corrupt

__all__ = ["Changes", "ClientSideStore", "Record", "Store", "StoreStats"]


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts for the ``stats`` command: live sessions and the bytes their data takes."""

    sessions: int
    size_bytes: int


class Store(ABC):
    """Base class for session stores; subclass it and pass :mod:`wsgisession.testing`.

    Every method may raise :class:`~wsgisession.errors.StoreUnavailableError` when the backing
    service cannot be reached; the middleware then applies its outage policy. A store must never
    swallow a failure and report success. How a save merges changes into a record is
    :meth:`Changes.apply_to <wsgisession.records.Changes.apply_to>`, whatever does the work.

    **The user index.** A record whose meta holds a user id under ``"user"``
    (:data:`wsgisession.records.USER`, set by ``session.set_user()``) belongs to that user. A
    store that defines :meth:`user_sessions` and :meth:`revoke_user` keeps a user → keys index
    in step with every write, atomically with it: :meth:`create` indexes the new key (and with
    ``replaces`` drops the old one), a :meth:`save` whose ``changes.meta`` names another user
    (or none) moves the key, and :meth:`delete`, :meth:`purge` and expiry drop it. A store
    that keeps no index still works for everything else; listing or revoking a user's
    sessions then raises :class:`~wsgisession.errors.NoUserIndexError`.
    """

    #: Turns values into text; JSON unless a subclass is given another one.
    serializer: Serializer

    def __init__(self, serializer: Serializer | None = None) -> None:
        self.serializer = serializer if serializer is not None else JSONSerializer()

    @abstractmethod
    def load(self, key: str, now: float) -> Record | None:
        """Return the live record under *key*, or None when it is missing, expired or corrupt.

        One round trip to the backing service. An expired record may be deleted on the way.
        """

    @abstractmethod
    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        """Write a new record under *key*; return True when it was written.

        With *replaces*, the session moves from that key to *key* (``regenerate()``), in one
        atomic step and only while the record under *replaces* is alive for *now*: it is
        deleted and the new record written, or, when it was deleted or expired meanwhile (a
        logout in another request), nothing is written and the answer is False. Of two
        overlapping moves of one session, at most one succeeds.

        Return False only for that refusal. A store written before this returned a bool may
        return None: the middleware takes None as success.
        """

    @abstractmethod
    def save(self, key: str, changes: Changes, now: float) -> bool:
        """Apply *changes* to the live record under *key*; return False when there is none.

        The data must become what ``changes.apply_to(data)`` makes of the data stored *now*,
        not of what the request loaded, so overlapping saves all land. A store may instead write
        ``changes.result`` when it knows the record is still as ``changes.loaded`` was. A record
        that was deleted or expired in the meantime is never brought back: that is what stops a
        slow request from resurrecting a session that logged out.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete the record under *key*; deleting a missing record is not an error."""

    @abstractmethod
    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        """Delete every record that expired before *now*; return how many were deleted.

        *progress*, when given, is called with the running count of deletions as the purge goes
        on (after each batch), for the command line's progress line. A store that leaves the
        parameter out still works everywhere but ``wsgisession purge`` on a terminal.
        """

    def user_sessions(self, user_id: str, now: float) -> list[tuple[str, Record]]:
        """Return the ``(key, record)`` pairs of every session of *user_id* alive at *now*.

        In one round trip where the store can. Expired records are left out (a store may
        delete them and their index entries on the way). The order is not specified.
        """
        raise NoUserIndexError(_no_index(self, "list a user's sessions"))

    def revoke_user(self, user_id: str, now: float, keep: str | None = None) -> int:
        """Delete every record of *user_id* but the one under *keep*; return how many went.

        Atomic with concurrent writes: a session of the user that is being created, moved to
        a new key (``regenerate()``) or saved while this runs is either deleted by it or was
        written after it, never left alive because it moved under the revocation. Expired
        records may be counted or not; only live sessions matter to the caller.
        """
        raise NoUserIndexError(_no_index(self, "end a user's sessions"))

    def count_expired(self, now: float) -> int:
        """Return how many records expired before *now*: what :meth:`purge` would delete.

        Read only, for ``wsgisession purge --dry-run``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot count its expired sessions, which purge --dry-run "
            "needs; define count_expired(now) on it (the count purge(now) would delete), or "
            "run purge without --dry-run"
        )

    def stats(self, now: float) -> StoreStats:
        """Return the number of live sessions and their total size in bytes."""
        raise NotImplementedError(
            f"{type(self).__name__} does not report stats; define stats(now) on it, returning "
            "StoreStats(live sessions, bytes of their data), to use wsgisession stats"
        )

    def close(self) -> None:  # noqa: B027 - a store without resources has nothing to close
        """Release connections and files; the store must not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Helpers for subclasses -------------------------------------------------------------

    def decode(self, key: str, text: str | bytes | None) -> Any:
        """Deserialize stored *text*; a corrupt value is logged (hashed key only) and gives None."""
        if text is None:
            return None
        try:
            return self.serializer.loads(text)
        except (ValueError, TypeError, UnicodeDecodeError):
            warn_corrupt(key)
            return None


def _no_index(store: Store, what: str) -> str:
    return (
        f"{type(store).__name__} keeps no user → sessions index, so it cannot {what}; "
        "use a store that keeps one (MemoryStore, SqliteStore, RedisStore, PostgresStore), or "
        "define user_sessions(user_id, now) and revoke_user(user_id, now, keep) on it and keep "
        "the index in step in create, save, delete and purge (see the Store docstring and "
        "wsgisession.testing.StoreContract)"
    )


class ClientSideStore(ABC):
    """A store whose record travels with the client: the sealed record *is* the cookie value.

    It is not a :class:`Store`: nothing is kept on the server, so there is nothing to load,
    create, save, delete or purge. The core calls :meth:`seal` to turn a whole session into an
    opaque, authenticated text and :meth:`unseal` to open it again; the store still knows
    nothing of HTTP: the core reads and builds the cookie. Pass one as ``store=`` all the same
    (``SessionMiddleware(app, store=CookieStore(), secret_keys=[...])``), and hold a custom one
    to :class:`wsgisession.testing.ClientSideStoreContract`.

    What a client-side store cannot do, by its nature: revoke a copy the client kept (a replayed
    cookie stays valid until the expiry sealed inside it), or merge two overlapping requests
    (the last response to set the cookie wins).
    """

    #: Turns values into text; JSON unless a subclass is given another one.
    serializer: Serializer

    def __init__(self, serializer: Serializer | None = None) -> None:
        self.serializer = serializer if serializer is not None else JSONSerializer()

    @abstractmethod
    def use_keys(self, secret_keys: Sequence[bytes]) -> None:
        """Take the core's secrets, newest first: the newest seals, every one unseals."""

    @abstractmethod
    def seal(
        self,
        session_id: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
    ) -> str:
        """Return the whole session as one opaque, url-safe text that only these keys open."""

    @abstractmethod
    def unseal(self, value: str, now: float) -> tuple[str, Record] | None:
        """Return ``(session_id, record)`` from a sealed text, or None.

        None for anything that was not sealed with one of the keys (and this store's purpose),
        was altered in any bit, or whose sealed expiry is not after *now*. Never raises for bad
        input: the text comes from the client.
        """

    def max_data_size(self, max_chars: int) -> int | None:
        """The most bytes of serialized session data a sealed text of *max_chars* can carry.

        The core uses it as the session's size limit, so a session too big for its cookie is
        refused when a value is set. None (the default) when the store cannot tell; the final
        check when the cookie is built still applies.
        """
        return None

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release what the store holds; it must not be used afterwards."""

    def __enter__(self) -> ClientSideStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
