"""CSRF protection at the WSGI level: unsafe requests must carry the session's CSRF token.

The token is :attr:`Session.csrf_token <wsgisession.session.Session.csrf_token>`: made on first
use, kept in the session, replaced by ``regenerate()``. Put it in every form as a hidden
``csrf_token`` field, or send it from JavaScript in an ``X-CSRF-Token`` header::

    app = SessionMiddleware(CSRFMiddleware(app), store=SqliteStore("sessions.db"))

``CSRFMiddleware`` goes *inside* ``SessionMiddleware`` (it needs the session). A request whose
method is not GET, HEAD, OPTIONS or TRACE and that carries no matching token gets a short 403
and never reaches the application. Reading a form field does not use up the body: it is made
seekable and rewound, so the application reads it as if nothing had happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from webob import Request

from .middleware import get_session

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SAFE_METHODS", "CSRFMiddleware", "check_csrf", "submitted_token"]

#: Methods that must not change anything, so they need no token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_FORBIDDEN_BODY = (
    b"Forbidden: this request did not carry a valid CSRF token. "
    b"Reload the page and submit the form again.\n"
)


def submitted_token(
    environ: WSGIEnvironment,
    field_name: str = "csrf_token",
    header_name: str = "X-CSRF-Token",
) -> str | None:
    """Return the token a request submitted: the header first, else the form field, else None.

    The form is read only for form content types, through WebOb, with the body made seekable
    and rewound afterwards; a body that cannot be parsed counts as no token.
    """
    request = Request(environ)
    header = request.headers.get(header_name)
    if header:
        return header
    if request.content_type not in _FORM_TYPES:
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


def check_csrf(
    environ: WSGIEnvironment,
    *,
    field_name: str = "csrf_token",
    header_name: str = "X-CSRF-Token",
    environ_key: str = "wsgisession",
) -> bool:
    """Tell whether a request may go on: a safe method, or the session's token submitted.

    Use it in a framework hook instead of :class:`CSRFMiddleware` when only some routes need
    it. The comparison runs in constant time; a session without a token never matches.
    Like any WebOb form read, a body over 10 KB is copied into a temporary file that replaces
    ``wsgi.input``; :class:`CSRFMiddleware` closes it when the response is done.
    """
    if environ.get("REQUEST_METHOD", "GET").upper() in SAFE_METHODS:
        return True
    session = get_session(environ, environ_key)
    return session.check_csrf_token(submitted_token(environ, field_name, header_name))


class CSRFMiddleware:
    """Refuse unsafe requests (POST, PUT, PATCH, DELETE, …) without the session's CSRF token.

    :param app: the WSGI application to protect; wrap the result in SessionMiddleware.
    :param field_name: the form field that carries the token (``csrf_token``).
    :param header_name: the header that carries the token (``X-CSRF-Token``), for JavaScript.
    :param environ_key: where SessionMiddleware put the session (``wsgisession``).
    :param exempt: a predicate on the environ for requests that need no token (a webhook with
        its own authentication, say); None (the default) exempts nothing.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        field_name: str = "csrf_token",
        header_name: str = "X-CSRF-Token",
        environ_key: str = "wsgisession",
        exempt: Callable[[WSGIEnvironment], bool] | None = None,
    ) -> None:
        self.app = app
        self.field_name = field_name
        self.header_name = header_name
        self.environ_key = environ_key
        self.exempt = exempt

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        received = environ.get("wsgi.input")
        if (self.exempt is not None and self.exempt(environ)) or check_csrf(
            environ,
            field_name=self.field_name,
            header_name=self.header_name,
            environ_key=self.environ_key,
        ):
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
                ("Content-Length", str(len(_FORBIDDEN_BODY))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [_FORBIDDEN_BODY]


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
