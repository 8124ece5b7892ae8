"""Session ids: generation, hashing for store keys, and HMAC signing with rotating keys.

Only this module knows that ``secret_keys`` are newest first: the newest key signs, every
key verifies, and every comparison runs in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

from .errors import ConfigurationError, ConfigurationTypeError, a_type

__all__ = [
    "ID_LENGTH",
    "Signer",
    "hash_id",
    "is_valid_id",
    "log_id",
    "new_id",
    "normalize_keys",
    "session_handle",
]

#: Characters in an id: ``secrets.token_urlsafe(32)`` gives 43 url-safe characters, 256 bits.
ID_LENGTH = 43
_ID_BYTES = 32
_SIG_LENGTH = 43  # base64url of a 32-byte HMAC-SHA256, without padding
_SIGNED_LENGTH = ID_LENGTH + 1 + _SIG_LENGTH
_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_id() -> str:
    """Return a fresh session id with 256 bits from the operating system's CSPRNG."""
    return secrets.token_urlsafe(_ID_BYTES)


def is_valid_id(value: str) -> bool:
    """Tell whether *value* has the exact shape of an id this library issues."""
    return len(value) == ID_LENGTH and _ID_RE.fullmatch(value) is not None


def hash_id(session_id: str) -> str:
    """Return the store key for *session_id*: its SHA-256, so a leaked store holds no live id."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


#: Put before a store key when a handle is made of it, so a handle is never a store key.
_HANDLE_LABEL = b"wsgisession session handle\x00"


def session_handle(store_key: str) -> str:
    """Return the public handle of the session stored under *store_key*.

    The hex SHA-256 of a fixed label and the key: it names one session in a user's list
    without being a credential. It is not an id (a cookie holding it names no session) and
    leads back to no id, since the key itself is a one-way hash of the id.
    """
    return hashlib.sha256(_HANDLE_LABEL + store_key.encode("ascii")).hexdigest()


def log_id(store_key: str) -> str:
    """Return the short prefix of a store key that log lines may carry instead of an id."""
    return store_key[:8]


#: How to make a key, for the messages that ask for one.
_MAKE_A_KEY = 'make a key with python -c "import secrets; print(secrets.token_urlsafe(32))"'
_ROTATION = (
    "secret_keys=['new key', 'old key'] (the first signs and every one verifies, so a "
    "replaced key can stay last until the cookies it signed expire)"
)


def normalize_keys(secret_keys: str | bytes | Sequence[str | bytes] | None) -> list[bytes]:
    """Return *secret_keys* as a list of bytes, newest first; refuse what is not keys.

    The messages name types and positions only, never a value: it may be a secret.
    """
    if secret_keys is None:
        return []
    if isinstance(secret_keys, (str, bytes)):
        secret_keys = [secret_keys]
    elif isinstance(secret_keys, (set, frozenset)):
        raise ConfigurationTypeError(
            f"secret_keys is {a_type(secret_keys)}, which has no order, and the first key "
            f"signs; give a list of str, newest first: {_ROTATION}; {_MAKE_A_KEY}"
        )
    elif not isinstance(secret_keys, Sequence):
        raise ConfigurationTypeError(
            f"secret_keys is {a_type(secret_keys)}; give a str, or a list of str newest first: "
            f"{_ROTATION}; {_MAKE_A_KEY}"
        )
    if not secret_keys:
        raise ConfigurationError(
            f"secret_keys is {a_type(secret_keys)} with no key; give at least one, or leave "
            f"secret_keys out (None) for unsigned ids, which only server-side stores allow; "
            f"{_MAKE_A_KEY}"
        )
    keys = []
    for position, key in enumerate(secret_keys):
        if not isinstance(key, (str, bytes)):
            raise ConfigurationTypeError(
                f"secret_keys[{position}] is {a_type(key)}; give each key as a str, newest "
                f"first; {_MAKE_A_KEY}"
            )
        raw = key.encode("utf-8") if isinstance(key, str) else key
        if not raw:
            raise ConfigurationError(
                f"secret_keys[{position}] is empty; give a long random string: {_MAKE_A_KEY}"
            )
        keys.append(raw)
    return keys


def derive_key(secret: bytes, purpose: str) -> bytes:
    """Derive a key for one *purpose* from a secret, so one secret never signs two kinds of data."""
    return hmac.new(secret, b"wsgisession:" + purpose.encode("ascii"), hashlib.sha256).digest()


class Signer:
    """Signs ids as ``id.signature`` with the newest key and verifies with every key.

    :param secret_keys: the secrets, newest first (already normalized to bytes).
    :param purpose: separates these signatures from any other use of the same secrets.
    """

    __slots__ = ("_keys",)

    def __init__(self, secret_keys: Sequence[bytes], purpose: str = "session-id") -> None:
        if not secret_keys:
            raise ConfigurationError("a Signer needs at least one secret key")
        # Keyed once per process: each signature copies a prepared HMAC instead of keying anew.
        self._keys = tuple(
            hmac.new(derive_key(secret, purpose), digestmod=hashlib.sha256)
            for secret in secret_keys
        )

    @property
    def key_count(self) -> int:
        """How many keys verify; more than one means a rotation is under way."""
        return len(self._keys)

    def _signature(self, key: hmac.HMAC, data: bytes) -> bytes:
        mac = key.copy()
        mac.update(data)
        return base64.urlsafe_b64encode(mac.digest())[:_SIG_LENGTH]

    def sign(self, session_id: str) -> str:
        """Return ``session_id.signature``, signed with the newest key."""
        signature = self._signature(self._keys[0], session_id.encode("ascii"))
        return f"{session_id}.{signature.decode('ascii')}"

    def verify(self, value: str) -> tuple[str, bool] | None:
        """Return ``(id, signed_with_newest_key)``, or None for anything but a valid signed id.

        Every key is tried even after a match, so the time taken does not tell which key fitted.
        Returns rather than raises: a forged cookie is an everyday input and costs no exception.
        """
        if len(value) != _SIGNED_LENGTH or value[ID_LENGTH] != "." or not value.isascii():
            return None
        # No check of the id's characters: only ids this library made are ever signed, so a
        # matching signature vouches for the id, and a forgery fails on the signature anyway.
        session_id = value[:ID_LENGTH]
        data = session_id.encode("ascii")
        signature = value[ID_LENGTH + 1 :].encode("ascii")
        matched = -1
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(self._signature(key, data), signature) and matched < 0:
                matched = index
        if matched < 0:
            return None
        return session_id, matched == 0
