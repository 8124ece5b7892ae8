"""Cookie settings: validated once at start-up, then used to read and build the session cookie.

Reading accepts only values of the exact shape this library issues (a bare id, or
``id.signature`` when secret keys are set), so a forged or garbage cookie never reaches a store.
Building goes through WebOb's ``make_cookie``; no header is formatted by hand.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from webob.cookies import make_cookie, parse_cookie  # type: ignore[attr-defined]

from .errors import ConfigurationError, SessionTooLargeError
from .signing import Signer, is_valid_id, normalize_keys

__all__ = ["COOKIE_SIZE_LIMIT", "CookieSettings", "ParsedCookie"]

logger = logging.getLogger("wsgisession")

#: The most bytes a ``Set-Cookie`` value may take: browsers keep cookies up to 4096 bytes.
COOKIE_SIZE_LIMIT = 4096
_SEALED_RE = re.compile(r"[A-Za-z0-9_-]+")
_MAX_SEALED = 4

_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
#: Values made of these characters go into a cookie as they are (WebOb quotes nothing in them).
_TOKEN_RE = re.compile(r"[A-Za-z0-9._-]+")
_PLACEHOLDER = "wsgisession-value"

# The common Cookie header, ``a=1; b=2`` with no quotes, spaces or escapes: for it WebOb's
# parser yields exactly these pairs, unchanged (tests/test_cookies.py checks that on generated
# headers), so the session values are picked out by one regex. Any other header goes to WebOb.
_VALUE_CHARS = r"[A-Za-z0-9~!@#$%^&*()_+=`.?|:/{}<>'-]*"
_NAME_CHARS = r"[A-Za-z0-9~!@#$%^&*()_+`.?|:/{}<>'-]+"
_PAIR = _NAME_CHARS + "=" + _VALUE_CHARS
_SIMPLE_HEADER = re.compile(f"{_PAIR}(?:; ?{_PAIR})*")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(slots=True)  # not frozen: built on every request with a cookie
class ParsedCookie:
    """A session id read from a request cookie, and whether its signature is current."""

    session_id: str
    #: False when the cookie was signed with an older key and should be re-signed.
    current: bool = True


@dataclass(frozen=True)
class CookieSettings:
    """The session cookie's name and attributes, checked for combinations that cannot work."""

    name: str = "wsgisession"
    path: str = "/"
    domain: str | None = None
    #: None: Secure exactly when the request came over HTTPS.
    secure: bool | None = None
    httponly: bool = True
    samesite: Any = "Lax"  #: "Strict", "Lax", "None" (any case), or None for no attribute
    secret_keys: str | bytes | Sequence[str | bytes] | None = None
    signer: Signer | None = field(init=False, repr=False, compare=False)
    _needle: str = field(init=False, repr=False, compare=False)
    _name_bytes: bytes = field(init=False, repr=False, compare=False)
    #: Picks this cookie's values out of a simple header; None for a name WebOb must handle.
    _values_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    #: The last attributes WebOb built: ((max_age, secure, second), "; Max-Age=…; Path=/; …").
    _attributes: list[tuple[tuple[int | None, bool, int], str]] = field(
        init=False, repr=False, compare=False, default_factory=list
    )

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in ' ;,="\\\t\r\n'):
            raise ConfigurationError(
                f"cookie_name={self.name!r} is not a valid cookie name; "
                "use letters, digits, - and _"
            )
        if self.samesite is not None:
            canonical = _SAMESITE.get(str(self.samesite).lower())
            if canonical is None:
                raise ConfigurationError(
                    f"cookie_samesite={self.samesite!r} is unknown; use 'Strict', 'Lax' or 'None'"
                )
            object.__setattr__(self, "samesite", canonical)
        if self.samesite == "None" and self.secure is not True:
            raise ConfigurationError(
                "cookie_samesite='None' needs cookie_secure=True: browsers reject SameSite=None "
                "cookies that are not Secure"
            )
        if self.name.startswith("__Host-"):
            if self.secure is not True:
                raise ConfigurationError(
                    f"cookie_name={self.name!r} (a __Host- cookie) needs cookie_secure=True"
                )
            if self.domain is not None:
                raise ConfigurationError(
                    f"cookie_name={self.name!r} (a __Host- cookie) must not set cookie_domain; "
                    "remove it"
                )
            if self.path != "/":
                raise ConfigurationError(
                    f"cookie_name={self.name!r} (a __Host- cookie) needs cookie_path='/', "
                    f"not {self.path!r}"
                )
        if self.name.startswith("__Secure-") and self.secure is not True:
            raise ConfigurationError(
                f"cookie_name={self.name!r} (a __Secure- cookie) needs cookie_secure=True"
            )
        if not self.path.startswith("/"):
            raise ConfigurationError(f"cookie_path={self.path!r} must start with '/'")
        keys = normalize_keys(self.secret_keys)
        object.__setattr__(self, "signer", Signer(keys) if keys else None)
        object.__setattr__(self, "_needle", self.name + "=")
        object.__setattr__(self, "_name_bytes", self.name.encode("latin-1"))
        values_re = None
        if _PLAIN_NAME.fullmatch(self.name):
            values_re = re.compile(f"(?:^|; ?){re.escape(self.name)}=({_VALUE_CHARS})(?=;|$)")
        object.__setattr__(self, "_values_re", values_re)

    # Reading ---------------------------------------------------------------------------

    def _check(self, value: str) -> ParsedCookie | None:
        """Return the id in one cookie value, or None when it is not a valid (signed) id."""
        signer = self.signer
        if signer is not None:
            verified = signer.verify(value)
            return None if verified is None else ParsedCookie(*verified)
        if not value.isascii() or not is_valid_id(value):
            return None
        return ParsedCookie(value)

    def _raw_values(self, header: str) -> list[str]:
        """Return the value of every cookie in *header* that carries the session name."""
        if self._needle not in header:
            return []
        values_re = self._values_re
        if values_re is not None and _SIMPLE_HEADER.fullmatch(header) is not None:
            return values_re.findall(header)
        if not header.isascii():
            # WSGI hands headers over as latin-1 text; anything else is not from a browser.
            try:
                header.encode("latin-1")
            except UnicodeEncodeError:
                return []
        name = self._name_bytes
        return [raw.decode("latin-1") for key, raw in parse_cookie(header) if key == name]

    def read_sealed(self, header: str) -> list[str]:
        """Return the session cookie values that have the shape of a sealed session, at most 4.

        For a client-side store, whose cookie value is the whole session sealed: only url-safe
        text no longer than a cookie can be is passed on to be opened; anything else is dropped
        here, before any store call.
        """
        values: list[str] = []
        for value in self._raw_values(header):
            if len(value) > COOKIE_SIZE_LIMIT or _SEALED_RE.fullmatch(value) is None:
                continue
            if value not in values:
                values.append(value)
                if len(values) == _MAX_SEALED:
                    break
        return values

    def read(self, header: str) -> ParsedCookie | None:
        """Return the one valid session id in a ``Cookie`` header, or None.

        When several cookies carry the session name (one tossed in from a sibling domain, say),
        values that fail the shape or signature check are ignored; if more than one distinct
        valid id remains, neither wins and a fresh session starts, so two sessions never mix.
        """
        found: ParsedCookie | None = None
        for value in self._raw_values(header):
            parsed = self._check(value)
            if parsed is None:
                continue
            if found is not None and found.session_id != parsed.session_id:
                logger.warning(
                    "request carried two different valid %r cookies; neither was used and a "
                    "fresh session starts (a __Host- cookie name prevents cookie tossing)",
                    self.name,
                )
                return None
            if found is None or not found.current:
                found = parsed
        return found

    # Building --------------------------------------------------------------------------

    def value_for(self, session_id: str) -> str:
        """Return the cookie value for *session_id*: signed when secret keys are set."""
        return self.signer.sign(session_id) if self.signer is not None else session_id

    def build(self, session_id: str, max_age: int | None, secure: bool) -> str:
        """Return a ``Set-Cookie`` value carrying *session_id*."""
        return self.build_value(self.value_for(session_id), max_age, secure)

    def build_value(self, value: str, max_age: int | None, secure: bool) -> str:
        """Return a ``Set-Cookie`` value carrying *value* as it is (a sealed session, say).

        Raises SessionTooLargeError when the header would pass the 4096 bytes browsers keep:
        a cookie is never silently truncated or dropped.
        """
        header = self._make(value, max_age, secure)
        if len(header) > COOKIE_SIZE_LIMIT:
            raise SessionTooLargeError(
                len(header),
                COOKIE_SIZE_LIMIT,
                "the session cookie (the whole Set-Cookie value, as browsers count it)",
            )
        return header

    def build_expired(self, secure: bool) -> str:
        """Return a ``Set-Cookie`` value that deletes the cookie (same Path and Domain)."""
        return self._make("", 0, secure)

    def _make(self, value: str, max_age: int | None, secure: bool) -> str:
        """Return ``name=value`` and the attributes, as WebOb's ``make_cookie`` writes them.

        The attributes depend on the request only through Max-Age, Secure and the second
        (WebOb writes ``expires`` from its clock), so WebOb builds them once for each of those
        and the value, which needs no quoting, is put in front.
        """
        if value and _TOKEN_RE.fullmatch(value) is None:
            return self._webob(value, max_age, secure)  # WebOb quotes it
        key = (max_age, secure, int(time.time()))
        cached = self._attributes
        if cached and cached[0][0] == key:
            attributes = cached[0][1]
        else:
            built = self._webob(_PLACEHOLDER, max_age, secure)
            attributes = built[len(self.name) + 1 + len(_PLACEHOLDER) :]
            cached[:] = [(key, attributes)]
        return f"{self.name}={value}{attributes}"

    def _webob(self, value: str, max_age: int | None, secure: bool) -> str:
        return make_cookie(
            self.name,
            value,
            max_age=max_age,
            path=self.path,
            domain=self.domain,
            secure=secure,
            httponly=self.httponly,
            samesite=self.samesite,
        )
