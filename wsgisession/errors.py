"""The exception tree of wsgisession; this module imports nothing from the package.

::

    SessionError                               root: catch this to catch everything
     ├── ConfigurationError (ValueError)        a bad option, raised at construction
     │    └── ConfigurationTypeError (TypeError)  an option of the wrong type
     ├── SerializationError (TypeError)         a value the serializer cannot hold
     ├── SessionTooLargeError (ValueError)      a session over the size limit, at save
     ├── SessionNotInstalledError (LookupError) get_session() without the middleware
     ├── MissingDriverError (ImportError)       a store's driver is not installed
     ├── UserIdError (ValueError)               a user id that is not a non-empty str
     ├── NoUserIndexError (NotImplementedError) a store that keeps no user → sessions index
     └── StoreError                             a store failed
          └── StoreUnavailableError             the store's server cannot be reached
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConfigurationTypeError",
    "MissingDriverError",
    "NoUserIndexError",
    "SerializationError",
    "SessionError",
    "SessionNotInstalledError",
    "SessionTooLargeError",
    "StoreError",
    "StoreUnavailableError",
    "UserIdError",
]


class SessionError(Exception):
    """Root of every error wsgisession raises on purpose."""


class ConfigurationError(SessionError, ValueError):
    """An option has a value or combination that cannot work; the message says what to change."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """An option has the wrong type (``secret_keys=123``); the message says what it accepts.

    A :class:`ConfigurationError`, so a ``ValueError`` like every bad option, and a
    ``TypeError`` too, as Python's own checks of argument types are.
    """


def a_type(value: object) -> str:
    """The type of *value* with its article, for messages: ``an int``, ``a list``, ``None``."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def check_type(option: str, value: object, kinds: tuple[type, ...], accepts: str) -> None:
    """Refuse *value* for *option* unless it is one of *kinds*; say what it got and what works.

    A bool is never taken for an int here (``max_age=True`` is a mistake, not one second).
    Raises :class:`ConfigurationTypeError`, whose message ends with *accepts*.
    """
    if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
        return
    raise ConfigurationTypeError(f"{option}={value!r} is {a_type(value)}; give {accepts}")


class SerializationError(SessionError, TypeError):
    """A session value cannot be serialized (JSON holds str, int, float, bool, None, list, dict)."""

    def __init__(
        self, key: str, value: object, reason: str = "", *, message: str | None = None
    ) -> None:
        #: The session key whose value was refused.
        self.key = key
        if message is None:
            detail = f": {reason}" if reason else ""
            message = (
                f"session[{key!r}] cannot hold a value of type {type(value).__name__}{detail}; "
                "store only JSON types (str, int, float, bool, None, list, dict with str keys)"
            )
        super().__init__(message)


class SessionTooLargeError(SessionError, ValueError):
    """A session grew past the size its store or cookie can hold."""

    def __init__(self, size: int, limit: int, where: str = "session") -> None:
        #: The size in bytes that was reached.
        self.size = size
        #: The limit in bytes that applies.
        self.limit = limit
        super().__init__(
            f"{where} is {size} bytes, over the limit of {limit} bytes; "
            "keep less in the session (store large data elsewhere and keep its key)"
        )


class SessionNotInstalledError(SessionError, LookupError):
    """No session in the WSGI environ: the middleware is not installed around this app."""


class BadCookieError(SessionError, ValueError):
    """Deprecated, never raised: a malformed, forged or expired cookie gives a fresh session.

    0.1.0 exported it; ``wsgisession.BadCookieError`` still resolves, with a DeprecationWarning,
    so that ``except`` clauses naming it keep working until it is removed.
    """


class MissingDriverError(SessionError, ImportError):
    """A store needs a driver that is not installed; the message names the extra to install."""


class UserIdError(SessionError, ValueError):
    """A user id given to ``set_user()`` or a user-index call is not a non-empty str."""


class NoUserIndexError(SessionError, NotImplementedError):
    """The store keeps no user → sessions index, so a user's sessions cannot be listed or ended.

    The message says why (a client-side store has no server state; a custom store did not
    define ``user_sessions`` / ``revoke_user``) and what to do.
    """


class StoreError(SessionError):
    """A store operation failed."""


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached or did not answer in time; the cause is chained."""
