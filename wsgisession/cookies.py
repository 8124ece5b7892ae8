"""Cookie settings: validated once at start-up, then used to read and build the session cookie.

Reading accepts only values of the exact shape this library issues (a bare id, or
``id.signature`` when secret keys are set), so a forged or garbage cookie never reaches a store.
Building goes through WebOb's ``make_cookie``; no header is formatted by hand.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from webob.cookies import make_cookie, parse_cookie  # type: ignore[attr-defined]

from .errors import ConfigurationError, SessionTooLargeError, check_type
from .signing import Signer, is_valid_id, normalize_keys

__all__ = [
    "COOKIE_SIZE_LIMIT",
    "CookieSettings",
    "ParsedCookie",
    "SameSite",
    "cookie_attributes",
    "path_matches",
    "quick_cookie_values",
]

#: The SameSite values (matched in any case); None for no attribute.
SameSite = Literal["Strict", "Lax", "None"]

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
#: A cookie name browsers keep: an RFC 6265 token (no spaces, separators or ``=``).
_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A Domain attribute: a host name (or an IPv4 address), with an optional leading dot.
_DOMAIN_RE = re.compile(
    r"\.?[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)
#: What a Path attribute cannot hold: ``;`` (it would end the attribute), controls, non-ASCII.
_BAD_PATH_RE = re.compile(r"[;\x00-\x1f\x7f]|[^\x00-\x7f]")


def path_matches(request_path: str, cookie_path: str) -> bool:
    """Tell whether a browser sends a cookie of *cookie_path* with a request for *request_path*.

    The path-match rule of RFC 6265, section 5.1.4: the same path, or a path below it.
    """
    if request_path == cookie_path or cookie_path == "/":
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )


def values_pattern(name: str) -> re.Pattern[str] | None:
    """The regex that picks cookie *name*'s values out of a plain header; None for odd names."""
    if _PLAIN_NAME.fullmatch(name) is None:
        return None
    return re.compile(f"(?:^|; ?){re.escape(name)}=({_VALUE_CHARS})(?=;|$)")


def quick_cookie_values(header: str, pattern: re.Pattern[str] | None) -> list[str] | None:
    """The measured fast path: a plain header's values for one cookie name, or None.

    A plain header (``a=1; b=2``, no quotes, spaces or escapes) is read with one regex
    (*pattern*, from :func:`values_pattern`); for it WebOb's parser gives exactly these values,
    which ``tests/test_cookies.py`` checks on generated headers. None means "not plain: ask
    WebOb".
    """
    if pattern is None or _SIMPLE_HEADER.fullmatch(header) is None:
        return None
    return pattern.findall(header)


@functools.lru_cache(maxsize=64)
def cookie_attributes(
    name: str,
    path: str,
    domain: str | None,
    httponly: bool,
    samesite: SameSite | None,
    max_age: int | None,
    secure: bool,
    second: int,
    partitioned: bool = False,
) -> str:
    """The ``; Max-Age=…; Path=/; …`` part of a Set-Cookie, exactly as WebOb writes it.

    A pure function of the cookie's attributes and the second (WebOb writes ``expires`` from
    its clock), cached: WebOb's ``make_cookie`` costs microseconds, and a busy server asks for
    the same few attribute sets every second.
    """
    built = _with_partitioned(
        make_cookie(
            name,
            _PLACEHOLDER,
            max_age=max_age,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        ),
        partitioned,
    )
    return built[len(name) + 1 + len(_PLACEHOLDER) :]


def _with_partitioned(header: str, partitioned: bool) -> str:
    """*header* (WebOb's Set-Cookie value) with CHIPS' ``Partitioned`` attribute when asked.

    WebOb's ``make_cookie`` has no parameter for it; the attribute takes no value, so it is
    added after WebOb's own.
    """
    return f"{header}; Partitioned" if partitioned else header


@dataclass(slots=True)  # not frozen: built on every request with a cookie
class ParsedCookie:
    """A session id read from a request cookie, and whether it was signed with an older key."""

    session_id: str
    #: True when the cookie was signed with an older secret key: it should be re-signed.
    stale_signature: bool = False


@dataclass(frozen=True)
class CookieSettings:
    """The session cookie's name and attributes, checked for combinations that cannot work."""

    name: str = "wsgisession"
    path: str = "/"
    domain: str | None = None
    #: None: Secure exactly when the request came over HTTPS.
    secure: bool | None = None
    httponly: bool = True
    #: "Strict", "Lax", "None" (matched in any case), or None for no attribute.
    samesite: SameSite | None = "Lax"
    #: True adds ``Partitioned`` (CHIPS): a third-party cookie kept per top-level site.
    partitioned: bool = False
    #: Kept out of repr(): error trackers and logs capture reprs and frame locals.
    secret_keys: str | bytes | Sequence[str | bytes] | None = field(default=None, repr=False)
    signer: Signer | None = field(init=False, repr=False, compare=False)
    _needle: str = field(init=False, repr=False, compare=False)
    _name_bytes: bytes = field(init=False, repr=False, compare=False)
    #: Picks this cookie's values out of a simple header; None for a name WebOb must handle.
    _values_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_types()
        if _NAME_RE.fullmatch(self.name) is None:
            bad = sorted({c for c in self.name if _NAME_RE.fullmatch(c) is None})
            why = f"it holds {', '.join(map(repr, bad))}" if bad else "it is empty"
            raise ConfigurationError(
                f"cookie_name={self.name!r} is not a valid cookie name: {why}, which browsers "
                "do not keep in a name (no spaces, separators such as ; , = or quotes); use "
                "letters, digits, - and _, e.g. cookie_name='wsgisession'"
            )
        self._check_path_and_domain()
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
        # Browsers match the prefixes in any case (__host-, __HOST-), so the checks do too.
        prefix = self.name[:9].lower()
        if prefix.startswith("__host-"):
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
        if prefix == "__secure-" and self.secure is not True:
            raise ConfigurationError(
                f"cookie_name={self.name!r} (a __Secure- cookie) needs cookie_secure=True"
            )
        if self.partitioned and self.secure is not True:
            raise ConfigurationError(
                f"cookie_partitioned=True needs cookie_secure=True, not "
                f"cookie_secure={self.secure!r}: browsers drop a Partitioned cookie that is not "
                "Secure (set cookie_secure=True and serve over HTTPS, or drop cookie_partitioned)"
            )
        keys = normalize_keys(self.secret_keys)
        object.__setattr__(self, "signer", Signer(keys) if keys else None)
        object.__setattr__(self, "_needle", self.name + "=")
        object.__setattr__(self, "_name_bytes", self.name.encode("latin-1"))
        object.__setattr__(self, "_values_re", values_pattern(self.name))

    def _check_types(self) -> None:
        """Refuse an attribute of the wrong type, naming the option and what it takes."""
        check_type("cookie_name", self.name, (str,), "a str, e.g. cookie_name='wsgisession'")
        check_type("cookie_path", self.path, (str,), "a str starting with '/', e.g. '/'")
        check_type(
            "cookie_domain",
            self.domain,
            (str, type(None)),
            "a host name as a str, e.g. 'example.com', or None for this host only",
        )
        check_type(
            "cookie_secure",
            self.secure,
            (bool, type(None)),
            "True (always Secure), False (never) or None (Secure exactly on HTTPS requests)",
        )
        check_type("cookie_httponly", self.httponly, (bool,), "True (the default) or False")
        check_type(
            "cookie_samesite",
            self.samesite,
            (str, type(None)),
            "'Strict', 'Lax' (the default) or 'None', or None for no attribute",
        )
        check_type("cookie_partitioned", self.partitioned, (bool,), "True or False (the default)")

    def _check_path_and_domain(self) -> None:
        """Refuse a Path or Domain a browser would not keep, saying what to write instead."""
        path = self.path
        if not path.startswith("/"):
            raise ConfigurationError(
                f"cookie_path={path!r} must start with '/' (browsers ignore any other Path), "
                f"e.g. cookie_path={'/' + path.lstrip('/')!r}"
            )
        bad_path = _BAD_PATH_RE.search(path)
        if bad_path is not None:
            raise ConfigurationError(
                f"cookie_path={path!r} holds {bad_path.group()!r}, which a Set-Cookie Path cannot "
                "carry (no ';', control or non-ASCII characters); percent-encode it as the "
                "request's URL is, e.g. cookie_path='/caf%C3%A9'"
            )
        domain = self.domain
        if domain is None:
            return
        advice = "give the host name alone, e.g. cookie_domain='example.com'"
        if not domain:
            raise ConfigurationError(
                "cookie_domain='' is empty; leave it out (None) to keep the cookie to this host, "
                f"or {advice}"
            )
        if "://" in domain:
            raise ConfigurationError(f"cookie_domain={domain!r} has a scheme; {advice}")
        if ":" in domain:
            raise ConfigurationError(
                f"cookie_domain={domain!r} has a port, which cookies do not have (a cookie is "
                f"sent to every port of its host); {advice}"
            )
        if "/" in domain:
            raise ConfigurationError(
                f"cookie_domain={domain!r} has a path; {advice}, and set cookie_path for the path"
            )
        if _DOMAIN_RE.fullmatch(domain) is None:
            raise ConfigurationError(
                f"cookie_domain={domain!r} is not a host name browsers accept (letters, digits, "
                "- and dots; an international name in its xn-- form); " + advice
            )

    # Reading ---------------------------------------------------------------------------

    def _check(self, value: str) -> ParsedCookie | None:
        """Return the id in one cookie value, or None when it is not a valid (signed) id."""
        signer = self.signer
        if signer is not None:
            verified = signer.verify(value)
            return None if verified is None else ParsedCookie(verified[0], not verified[1])
        if not value.isascii() or not is_valid_id(value):
            return None
        return ParsedCookie(value)

    def values(self, header: str) -> list[str]:
        """Return the value of every cookie in *header* that carries the session name."""
        if self._needle not in header:
            return []
        quick = quick_cookie_values(header, self._values_re)
        if quick is not None:
            return quick
        if not header.isascii():
            # WSGI hands headers over as latin-1 text; anything else is not from a browser.
            try:
                header.encode("latin-1")
            except UnicodeEncodeError:
                return []
        name = self._name_bytes
        return [raw.decode("latin-1") for key, raw in parse_cookie(header) if key == name]

    def sealed_candidates(self, values: Iterable[str]) -> list[str]:
        """Return the distinct *values* that have the shape of a sealed session, at most 4.

        For a client-side store, whose cookie value is the whole session sealed: only url-safe
        text no longer than a cookie can be is passed on to be opened; anything else is dropped
        here, before any store call.
        """
        found: list[str] = []
        for value in values:
            if len(value) > COOKIE_SIZE_LIMIT or _SEALED_RE.fullmatch(value) is None:
                continue
            if value not in found:
                found.append(value)
                if len(found) == _MAX_SEALED:
                    break
        return found

    def candidates(self, values: Sequence[str]) -> list[ParsedCookie]:
        """Return the distinct valid session ids among cookie *values*, in order.

        Values that fail the shape or signature check are dropped here, before any store call.
        An id sent twice counts once, with the newest signature it came with.
        """
        if len(values) == 1:  # the common case: one cookie of the name
            parsed = self._check(values[0])
            return [] if parsed is None else [parsed]
        found: list[ParsedCookie] = []
        for value in values:
            parsed = self._check(value)
            if parsed is None:
                continue
            for index, seen in enumerate(found):
                if seen.session_id == parsed.session_id:
                    if seen.stale_signature:
                        found[index] = parsed
                    break
            else:
                found.append(parsed)
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
            # WebOb quotes it
            return _with_partitioned(
                make_cookie(
                    self.name,
                    value,
                    max_age=max_age,
                    path=self.path,
                    domain=self.domain,
                    secure=secure,
                    httponly=self.httponly,
                    samesite=self.samesite,
                ),
                self.partitioned,
            )
        attributes = cookie_attributes(
            self.name,
            self.path,
            self.domain,
            self.httponly,
            self.samesite,
            max_age,
            secure,
            int(time.time()),
            self.partitioned,
        )
        return f"{self.name}={value}{attributes}"
