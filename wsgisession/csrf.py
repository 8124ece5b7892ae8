"""CSRF protection at the WSGI level: unsafe requests must come from this site and carry the token.

The token is :attr:`Session.csrf_token <wsgisession.session.Session.csrf_token>`: made on first
use, kept in the session, replaced by ``regenerate()``. Put it in every form as a hidden
``csrf_token`` field, or send it from JavaScript in an ``X-CSRF-Token`` header::

    app = SessionMiddleware(CSRFMiddleware(app), store=SqliteStore("sessions.db"))

``CSRFMiddleware`` goes *inside* ``SessionMiddleware`` (it needs the session). A request whose
method is not GET, HEAD, OPTIONS or TRACE gets a short 403, and never reaches the application,
when it comes from another site (its ``Origin``, or over HTTPS without ``Origin`` its
``Referer``, is neither this host nor a trusted origin: OWASP's defence in depth) or when it
carries no matching token. Reading a form field does not use up the body: it is made seekable
and rewound, so the application reads it as if nothing had happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from webob import Request

from .errors import ConfigurationError, SessionNotInstalledError
from .middleware import SessionMiddleware, get_session

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SAFE_METHODS", "CSRFMiddleware", "check_csrf", "submitted_token"]

logger = logging.getLogger("wsgisession.csrf")

#: Methods that must not change anything, so they need no token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN_BODY = (
    b"Forbidden: this request did not carry a valid CSRF token. "
    b"Reload the page and submit the form again.\n"
)
_FORBIDDEN_ORIGIN_BODY = (
    b"Forbidden: this request was sent from another site. "
    b"Open the page on this site and submit the form from there.\n"
)
_ORDER = (
    "put CSRFMiddleware inside SessionMiddleware, which makes the session it checks: "
    "SessionMiddleware(CSRFMiddleware(app), ...), not CSRFMiddleware(SessionMiddleware(app, ...))"
)


def submitted_token(
    environ: WSGIEnvironment,
    field_name: str = "csrf_token",
    header_name: str = "X-CSRF-Token",
) -> str | None:
    """Return the token a request submitted: the header first, else the form field, else None.

    The form is read only for form content types in UTF-8 (the only charset WebOb reads forms
    in; the token is ASCII, so a client can always send it so), through WebOb, with the body
    made seekable and rewound afterwards; a body that cannot be parsed counts as no token.
    """
    request = Request(environ)
    header = request.headers.get(header_name)
    if header:
        return header
    if request.content_type not in _FORM_TYPES or request.charset != "UTF-8":
        # WebOb refuses to parse a form declared in another charset (it raises a
        # DeprecationWarning): such a request submitted no token we can read.
        return None
    try:
        body = request.body_file_seekable  # the body, copied once into a seekable file
        try:
            value = request.POST.get(field_name)
        finally:
            body.seek(0)  # the application reads the body from the start, as if unread
    except (ValueError, LookupError, OSError):
        # A malformed body or charset, or a client that went away: no token was submitted.
        return None
    return value if isinstance(value, str) else None


def _origin(url: str) -> str | None:
    """The ``scheme://host[:port]`` of an http(s) URL, normalized as browsers send ``Origin``.

    Scheme and host in lower case, the default port left out; None for anything else.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port out of range or not a number, a bad IPv6 literal
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _trusted_origins(origins: str | Iterable[str]) -> frozenset[str]:
    """Check and normalize ``trusted_origins``; raise ConfigurationError saying what to give."""
    if isinstance(origins, str):
        origins = [origins]
    trusted = set()
    for given in origins:
        if not isinstance(given, str):
            raise ConfigurationError(
                f"trusted_origins holds {given!r}; give origins as strings, such as "
                "trusted_origins=['https://example.com']"
            )
        if given.strip().lower() == "null":
            raise ConfigurationError(
                "trusted_origins cannot hold 'null': browsers send Origin: null from sandboxed "
                "frames, file: pages and cross-site redirects of any site, so trusting it lets "
                "every site post; drop it (requests with Origin: null are always refused)"
            )
        origin = _origin(given)
        parts = urlsplit(given.strip())
        if (
            origin is None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
            or "*" in given
        ):
            raise ConfigurationError(
                f"trusted_origins holds {given!r}, which is not an origin; give each as "
                "scheme://host[:port] with no path or wildcard, such as 'https://example.com' "
                "or 'https://admin.example.com:8443'"
            )
        trusted.add(origin)
    return frozenset(trusted)


def _origin_problem(environ: WSGIEnvironment, trusted: frozenset[str], option: str) -> str | None:
    """Why an unsafe request does not come from this site, for the log; None when it does.

    ``Origin`` decides when it is sent (every current browser sends it with every POST);
    without it, over HTTPS, ``Referer`` must name this site (OWASP and Django do the same;
    over plain HTTP a missing ``Origin`` leaves the decision to the token). An ``https://``
    origin of this very host is accepted when the application sees plain HTTP (behind a TLS
    proxy); an ``http://`` page posting to an HTTPS application is not. *option* is how the
    caller's ``trusted_origins`` is written, for the advice in the message.
    """
    try:
        own = _origin(Request(environ).host_url)
    except (TypeError, KeyError):  # an environ without Host or SERVER_NAME
        own = None
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        if origin.strip().lower() == "null":
            return (
                "its Origin is 'null' (a sandboxed frame, a file: page or a cross-site "
                "redirect), which cannot be trusted; submit the form from a page of this site"
            )
        header, seen = "Origin", _origin(origin)
    elif environ.get("wsgi.url_scheme") != "https":
        return None
    else:
        referer = environ.get("HTTP_REFERER")
        if not referer:
            return (
                "it is HTTPS and sends neither Origin nor Referer, which every browser sends "
                f"with a form; a script must send Origin: {own}"
            )
        header, seen = "Referer", _origin(referer)
    if seen is None:
        shown = origin if header == "Origin" else environ.get("HTTP_REFERER")
        return f"its {header} {shown!r} is not an http(s) URL"
    if seen == own or seen in trusted:
        return None
    same_host = own is not None and seen.partition("://")[2] == own.partition("://")[2]
    if same_host and seen.startswith("https://"):
        # This host's HTTPS page posting to an application that sees plain HTTP: it sits
        # behind a TLS proxy. An upgrade, never a downgrade, so nothing to refuse.
        return None
    advice = f"if {seen} is yours, trust it: {option.format(seen=repr(seen))}"
    if same_host:
        advice = (
            "a page served over plain HTTP, which anyone on the network can alter, may not post "
            f"to this HTTPS site: serve the form over HTTPS, or {advice}"
        )
    return f"its {header} {seen} is neither this site ({own}) nor a trusted origin; {advice}"


def _refusal(
    environ: WSGIEnvironment,
    field_name: str,
    header_name: str,
    environ_key: str,
    trusted: frozenset[str],
    option: str,
) -> bytes | None:
    """The 403 body for a request that may not go on, or None when it may."""
    if environ.get("REQUEST_METHOD", "GET").upper() in SAFE_METHODS:
        return None
    problem = _origin_problem(environ, trusted, option)
    if problem is not None:
        logger.warning(
            "CSRF: refused %s %r: %s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO", ""),
            problem,
        )
        return _FORBIDDEN_ORIGIN_BODY
    session = get_session(environ, environ_key)
    if session.check_csrf_token(submitted_token(environ, field_name, header_name)):
        return None
    return _FORBIDDEN_BODY


def check_csrf(
    environ: WSGIEnvironment,
    *,
    field_name: str = "csrf_token",
    header_name: str = "X-CSRF-Token",
    environ_key: str = "wsgisession",
    trusted_origins: str | Iterable[str] = (),
) -> bool:
    """Tell whether a request may go on: a safe method, or from this site with the token.

    Use it in a framework hook instead of :class:`CSRFMiddleware` when only some routes need
    it; it checks what the middleware checks (the origin, then the token) and logs why it
    refused an origin. The comparison runs in constant time; a session without a token never
    matches. Like any WebOb form read, a body over 10 KB is copied into a temporary file that
    replaces ``wsgi.input``; :class:`CSRFMiddleware` closes it when the response is done.

    :param trusted_origins: other origins allowed to post, as for :class:`CSRFMiddleware`.
    """
    try:
        return (
            _refusal(
                environ,
                field_name,
                header_name,
                environ_key,
                _trusted_origins(trusted_origins),
                "check_csrf(environ, trusted_origins=[{seen}])",
            )
            is None
        )
    except SessionNotInstalledError as exc:
        raise SessionNotInstalledError(
            f"check_csrf() found no session at environ[{environ_key!r}]: call it inside "
            "SessionMiddleware, from a view or hook of the application that SessionMiddleware "
            "wraps, and pass the same environ_key if you changed it"
        ) from exc


class CSRFMiddleware:
    """Refuse unsafe requests (POST, PUT, PATCH, DELETE, …) from other sites or without the token.

    :param app: the WSGI application to protect; wrap the result in SessionMiddleware:
        ``SessionMiddleware(CSRFMiddleware(app), ...)``.
    :param field_name: the form field that carries the token (``csrf_token``).
    :param header_name: the header that carries the token (``X-CSRF-Token``), for JavaScript.
    :param environ_key: where SessionMiddleware put the session (``wsgisession``).
    :param exempt: a predicate on the environ for requests that need no token (a webhook with
        its own authentication, say); None (the default) exempts nothing.
    :param trusted_origins: origins other than the request's own host allowed to post, each
        ``scheme://host[:port]`` (``["https://admin.example.com"]``); a str counts as one.
        ``Origin: null`` is always refused and cannot be trusted: sandboxed frames, file:
        pages and cross-site redirects of any site send it.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        field_name: str = "csrf_token",
        header_name: str = "X-CSRF-Token",
        environ_key: str = "wsgisession",
        exempt: Callable[[WSGIEnvironment], bool] | None = None,
        trusted_origins: str | Iterable[str] = (),
    ) -> None:
        if isinstance(app, SessionMiddleware):
            raise ConfigurationError(f"CSRFMiddleware was given SessionMiddleware: {_ORDER}")
        self.app = app
        self.field_name = field_name
        self.header_name = header_name
        self.environ_key = environ_key
        self.exempt = exempt
        #: The normalized origins, besides the request's own, that may send unsafe requests.
        self.trusted_origins = _trusted_origins(trusted_origins)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            get_session(environ, self.environ_key)
        except SessionNotInstalledError as exc:
            # Checked on every request, safe ones too, so the mistake shows on the first page.
            raise SessionNotInstalledError(
                f"CSRFMiddleware found no session at environ[{self.environ_key!r}]: {_ORDER} "
                "(and give both the same environ_key, if you changed it)"
            ) from exc
        received = environ.get("wsgi.input")
        refusal = None
        if self.exempt is None or not self.exempt(environ):
            refusal = _refusal(
                environ,
                self.field_name,
                self.header_name,
                self.environ_key,
                self.trusted_origins,
                "CSRFMiddleware(app, trusted_origins=[{seen}])",
            )
        if refusal is None:
            result = self.app(environ, start_response)
            copy = environ.get("wsgi.input")
            if copy is not received and hasattr(copy, "close"):
                # The check copied the body into a seekable (maybe temporary) file: close it
                # once the response is done with, as the server closes the original.
                return _Closing(result, copy)
            return result
        start_response(
            "403 Forbidden",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(refusal))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [refusal]


class _Closing:
    """The application's response, which also closes the body copy when the server closes it."""

    __slots__ = ("_result", "_file")

    def __init__(self, result: Iterable[bytes], file: Any) -> None:
        self._result = result
        self._file = file

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._file.close()
