"""CookieStore: the whole session, encrypted and authenticated, inside the cookie.

Nothing is kept on the server. Each cookie value is ``base64url(version | nonce | ciphertext)``:
AES-256-GCM from ``cryptography`` over the JSON of the id, the data, the session's bookkeeping
and the expiry, with a fresh 96-bit random nonce per cookie. The AES keys are derived with HKDF
from the middleware's ``secret_keys`` and this store's *purpose*, so the same secrets sign ids
for a server-side store, or seal cookies for another purpose, without one value ever passing
for another. The newest key seals; every key opens, which is how keys rotate.

The payload is never compressed: compressing secrets (the CSRF token) together with values an
attacker can influence would let the cookie's length leak them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, MissingDriverError
from ..records import Record
from ..serializers import Serializer
from ..signing import is_valid_id
from .base import ClientSideStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CookieStore"]

logger = logging.getLogger("wsgisession.store")

_VERSION = b"\x01"
_NONCE = 12
_TAG = 16
#: The shortest sealed value: version, nonce, tag and at least the smallest JSON object.
_MIN_CHARS = (1 + _NONCE + _TAG + 2) * 4 // 3
#: Longer values are refused unread; no browser sends a cookie this long.
_MAX_CHARS = 8192
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
#: Room kept in every payload for the session's own bookkeeping: at most a creation time and
#: one expiry choice, the longest ``{"created":12345678901.234568,"ends":12345678901.234568}``.
_META_RESERVE = 56


def _aesgcm_class() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - exercised in a fresh interpreter
        raise MissingDriverError(
            "CookieStore needs the 'cryptography' package: pip install 'sessions-wsgi[cookie]'"
        ) from exc
    return AESGCM


class CookieStore(ClientSideStore):
    """Client-side sessions: the whole session, encrypted, in the cookie.

    Use it with ``SessionMiddleware(app, store=CookieStore(), secret_keys=[...])``; without
    ``secret_keys`` the middleware refuses to start. No server state means no store to run and
    nothing to scale, at a price:

    * a session must stay small: the whole ``Set-Cookie`` header is limited to 4096 bytes, so
      the session's size limit is what fits (:meth:`max_data_size`), and setting a value past
      it raises :class:`~wsgisession.errors.SessionTooLargeError` naming the key;
    * a copy of an old cookie stays valid until the expiry sealed inside it, so ``destroy()``
      and ``regenerate()`` cannot revoke a cookie an attacker already stole;
    * two overlapping requests of one session do not merge: the last response wins.

    Expiry travels inside the authenticated payload and is checked with the middleware's clock,
    so a client that keeps a cookie past its ``Max-Age`` gains nothing.

    :param purpose: separates these cookies from anything else sealed with the same secrets;
        two apps that share secrets but not a purpose cannot read each other's sessions.
    :param serializer: how the session becomes text before it is encrypted; JSON by default.
    """

    def __init__(self, purpose: str = "session", serializer: Serializer | None = None) -> None:
        super().__init__(serializer)
        if not isinstance(purpose, str) or not purpose:
            raise ConfigurationError(
                f"purpose={purpose!r} must be a non-empty str, e.g. 'session' or your app's name"
            )
        self._aesgcm = _aesgcm_class()
        from cryptography.exceptions import InvalidTag

        self._invalid_tag = InvalidTag
        #: What these cookies are for; part of the key derivation.
        self.purpose = purpose
        self._secrets: tuple[bytes, ...] = ()
        self._ciphers: tuple[AESGCM, ...] = ()

    def use_keys(self, secret_keys: Sequence[bytes]) -> None:
        """Derive one AES-256 key per secret (newest first) for this store's purpose."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        secrets = tuple(secret_keys)
        if not secrets:
            raise ConfigurationError(
                "CookieStore needs secret_keys to encrypt the session: "
                "SessionMiddleware(app, store=CookieStore(), secret_keys=['a long random key'])"
            )
        if self._secrets and self._secrets != secrets:
            raise ConfigurationError(
                "this CookieStore already serves a SessionMiddleware with other secret_keys; "
                "give each middleware its own CookieStore()"
            )
        info = b"wsgisession cookie store v1:" + self.purpose.encode("utf-8")
        self._ciphers = tuple(
            self._aesgcm(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(s))
            for s in secrets
        )
        self._secrets = secrets

    def _keys(self) -> tuple[AESGCM, ...]:
        if not self._ciphers:
            raise ConfigurationError(
                "this CookieStore has no keys yet; pass it to "
                "SessionMiddleware(app, store=CookieStore(), secret_keys=[...])"
            )
        return self._ciphers

    def seal(
        self,
        session_id: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
    ) -> str:
        """Encrypt the whole session with the newest key into a url-safe text."""
        cipher = self._keys()[0]
        payload = {"i": session_id, "e": expires, "m": dict(meta), "d": dict(data)}
        plaintext = self.serializer.dumps(payload).encode("utf-8")
        nonce = os.urandom(_NONCE)
        sealed = _VERSION + nonce + cipher.encrypt(nonce, plaintext, _VERSION)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def unseal(self, value: str, now: float) -> tuple[str, Record] | None:
        """Open a sealed text with any key; None when it is forged, altered, foreign or expired."""
        if (
            not isinstance(value, str)
            or not _MIN_CHARS <= len(value) <= _MAX_CHARS
            or _TOKEN_RE.fullmatch(value) is None
        ):
            return None
        try:
            sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
        if sealed[:1] != _VERSION:
            return None
        if base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii") != value:
            return None  # unused low bits set in the last character: one session, one text
        nonce, ciphertext = sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :]
        plaintext = None
        for cipher in self._keys():
            try:
                plaintext = cipher.decrypt(nonce, ciphertext, _VERSION)
            except self._invalid_tag:
                continue
            break
        if plaintext is None:
            return None
        try:
            payload = self.serializer.loads(plaintext)
        except (ValueError, TypeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            logger.warning("an authentic session cookie held an unreadable payload; ignored")
            return None
        session_id, expires = payload.get("i"), payload.get("e")
        data, meta = payload.get("d"), payload.get("m")
        if (
            not isinstance(session_id, str)
            or not is_valid_id(session_id)
            or not isinstance(expires, (int, float))
            or isinstance(expires, bool)
            or not isinstance(data, dict)
            or not isinstance(meta, dict)
        ):
            logger.warning("an authentic session cookie held an unexpected payload; ignored")
            return None
        if expires <= now:
            return None
        return session_id, Record(data, meta, float(expires), None, len(plaintext))

    def max_data_size(self, max_chars: int) -> int:
        """The most bytes of session data (as serialized) a cookie value of *max_chars* holds.

        What is left of the base64 text once the version, nonce, tag and the payload's own
        fields (id, expiry, and room for the session's bookkeeping) are taken out.
        """
        sealed_bytes = max_chars * 3 // 4 - (1 + _NONCE + _TAG)
        # The longest expiry a clock gives before the year 2361: 18 characters.
        envelope = {"i": "x" * 43, "e": 12345678901.234568, "m": {}, "d": {}}
        overhead = len(self.serializer.dumps(envelope).encode("utf-8")) - len("{}")
        return max(0, sealed_bytes - overhead - _META_RESERVE)
