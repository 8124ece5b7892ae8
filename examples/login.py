"""Log in and out on plain WSGI with WebOb: flash messages, a page counter, CSRF-checked forms.

Run it (from the repository root)::

    .venv/bin/gunicorn -c examples/gunicorn.conf.py --chdir examples login:app

and open http://127.0.0.1:8000. The demo users are ``alice`` / ``wonderland`` and ``bob`` /
``builder``. What it shows:

- login calls ``session.regenerate()`` before it stores the user, so an id planted before login
  (session fixation) is worthless after it;
- logout calls ``session.destroy()``, then flashes "logged out": setting a key after destroy()
  starts a brand-new session, so the message survives the logout;
- flash messages are shown exactly once (``pop_flash()`` removes them as it reads them);
- every POST is refused with a 403 unless it carries its form's CSRF token;
- login binds the session to its user (``session.set_user()``), so the "your sessions" page,
  ``/sessions``, lists every session of that user, the current one marked, with the browser
  each one was opened in (the middleware's ``describe`` hook keeps the user agent, and only
  for sessions bound to a login), and ends any one of them, or all the others ("log out
  everywhere else", after a password change say). An ended session is dead on its next
  request, whichever worker or host serves it.

**No session for an anonymous GET or HEAD.** Each stored session costs a record for as long as
it lives, so a page that made one for every cookie-less visitor would let crawlers, monitors and
anyone with ``curl`` in a loop grow the store without bound. Here GET and HEAD only *use* a
session the visitor already has (the counter counts the views of visitors who have one); they
never create one. A session starts on a POST, which a CSRF token guards, and one that is not
(or no longer) bound to a login gets a short lifetime, ``ANONYMOUS_MAX_AGE``, with
``session.set_expiry()``; login gives it the full ``MAX_AGE`` back.

**The login form's token without a session.** The login form still needs a CSRF token: without
one, another site could log a visitor in to *its* account ("login CSRF"). The session's own
token would need a session, so the login form uses a pre-session token instead, the double-submit
pattern: a random value in an ``HttpOnly``, ``SameSite=Lax`` browser-session cookie scoped to
``/login``, repeated in the form, and compared in constant time when the form comes back.
Another site can make the browser send the cookie but can neither read it nor set it, so it
cannot fill in the form's copy. It costs no store write, and the cookie is dropped at login.
(Creating the session only on the login POST without a token would leave the login form open to
login CSRF; a stored pre-session for every visitor is the growth this avoids.) The forms of a
logged-in visitor, who has a session, carry ``session.csrf_token``.

A form in a charset other than UTF-8 (which WebOb does not read) carries no token the example
can read, so it is refused with a 403 as well.

``WSGISESSION_STORE`` picks the store (``sqlite:///login-sessions.db`` by default) and
``WSGISESSION_SECRET`` gives the cookie-signing keys, comma-separated, newest first.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from webob import Request, Response
from webob.exc import HTTPForbidden, HTTPMethodNotAllowed, HTTPNotFound, HTTPSeeOther

from wsgisession import Session, SessionMiddleware, get_session, store_from_url
from wsgisession.csrf import submitted_token

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: Demo accounts. A real application keeps password hashes (argon2, scrypt), never passwords.
USERS = {"alice": "wonderland", "bob": "builder"}

#: The longest note the note form keeps.
NOTE_LIMIT = 200

#: Idle lifetime of a logged-in session: 14 days.
MAX_AGE = 14 * 24 * 3600
#: Idle lifetime of a session bound to no login (a failed login's message, "logged out").
ANONYMOUS_MAX_AGE = 15 * 60

#: The longest user agent kept with a session (they are only shown, never trusted).
AGENT_LIMIT = 200

#: The cookie that carries the login form's pre-session token, and the path it is sent to.
LOGIN_COOKIE = "login_csrf"
LOGIN_PATH = "/login"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def check_password(username: str, password: str) -> bool:
    """Tell whether *password* is *username*'s, in time that does not depend on where it differs."""
    expected = USERS.get(username, "\0 no such user")
    return hmac.compare_digest(expected.encode(), password.encode()) and username in USERS


def field(request: Request, name: str) -> str:
    """A text field of the posted form; "" when it is missing, a file upload, or not UTF-8."""
    if request.charset != "UTF-8":
        return ""  # WebOb reads forms in UTF-8 only, and raises for any other charset
    value = request.POST.get(name, "")
    return value if isinstance(value, str) else ""


def login_token(request: Request) -> str | None:
    """The pre-session token in the visitor's login cookie, when it has a well-formed one."""
    value = request.cookies.get(LOGIN_COOKIE)
    return value if value is not None and _TOKEN.fullmatch(value) else None


def login_token_matches(request: Request) -> bool:
    """Tell whether the login form came back with the token of this browser's login cookie."""
    expected, sent = login_token(request), submitted_token(request.environ)
    if expected is None or sent is None or not _TOKEN.fullmatch(sent):
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())


def page(request: Request, session: Session) -> Response:
    """The one page: messages, the counter, and the forms that fit the visitor's state.

    It never creates a session: without one it shows the login form, with a pre-session token.
    """
    parts = ["<!doctype html>", "<title>wsgisession login example</title>"]
    exists = session.id is not None  # no store call for a visitor without a session cookie
    if exists:
        messages = session.pop_flash()
        if messages:
            items = "".join(f'<li class="flash">{escape(str(m))}</li>' for m in messages)
            parts.append(f'<ul id="flashes">{items}</ul>')
        # HEAD shows what GET would, without counting a view.
        views = session.increment("views") if request.method == "GET" else session.get("views", 0)
        times = "once" if views == 1 else f"{views} times"
        parts.append(f'<p id="counter">You have viewed this page {times}.</p>')
    user = session.get("user") if exists else None
    new_login_token = None
    if user is None:
        token = login_token(request)
        if token is None:
            token = new_login_token = secrets.token_urlsafe(32)
        parts.append(
            f'<form id="login" method="post" action="{LOGIN_PATH}">'
            f'<input type="hidden" name="csrf_token" value="{escape(token)}">'
            '<label>User <input name="username" autocomplete="username"></label> '
            '<label>Password <input name="password" type="password" '
            'autocomplete="current-password"></label> '
            '<button type="submit">Log in</button></form>'
        )
    else:
        hidden = f'<input type="hidden" name="csrf_token" value="{escape(session.csrf_token)}">'
        note = session.get("note")
        parts.append(f'<p id="user">Logged in as {escape(str(user))}.</p>')
        parts.append('<p><a id="sessions-link" href="/sessions">Your sessions</a></p>')
        if note:
            parts.append(f'<p id="note">Your note: {escape(str(note))}</p>')
        parts.append(
            '<form id="note-form" method="post" action="/note">'
            f'{hidden}<input name="note" maxlength="{NOTE_LIMIT}"> '
            '<button type="submit">Save note</button></form>'
            f'<form id="logout" method="post" action="/logout">{hidden}'
            '<button type="submit">Log out</button></form>'
        )
    response = Response("\n".join(parts), content_type="text/html", charset="utf-8")
    response.cache_control.no_store = True  # a visitor's own tokens: never for a shared cache
    if new_login_token is not None:
        response.set_cookie(
            LOGIN_COOKIE,
            new_login_token,
            path=LOGIN_PATH,
            secure=request.scheme == "https",
            httponly=True,
            samesite="lax",
        )
    return response


def login(request: Request, session: Session) -> Response:
    """Check the credentials; on success move the session to a new id, then store the user."""
    username = field(request, "username").strip()
    if not check_password(username, field(request, "password")):
        session.flash("Wrong user name or password.")
        session.set_expiry(ANONYMOUS_MAX_AGE)  # bound to no login: short-lived
        return HTTPSeeOther(location="/")
    session.regenerate()  # a new id at the moment the session gains privileges
    session.set_expiry(MAX_AGE)
    session["user"] = username
    session.set_user(username)  # listed among the user's sessions, revocable from any of them
    session.flash(f"Welcome, {username}.")
    response = HTTPSeeOther(location="/")
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)  # the pre-session token is done
    return response


def logout(request: Request, session: Session) -> Response:
    """End the session, then start a short-lived one that carries the goodbye message."""
    session.destroy()
    session.flash("logged out")
    session.set_expiry(ANONYMOUS_MAX_AGE)
    return HTTPSeeOther(location="/")


def save_note(request: Request, session: Session) -> Response:
    """Keep a short note in the session of a logged-in user."""
    if session.get("user") is None:
        session.flash("Log in to keep a note.")
        return HTTPSeeOther(location="/")
    session["note"] = field(request, "note")[:NOTE_LIMIT]
    session.flash("note saved")
    return HTTPSeeOther(location="/")


def _when(moment: datetime) -> str:
    """A moment as the sessions page shows it (UTC, to the minute)."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def sessions_page(request: Request, session: Session) -> Response:
    """The user's sessions, this one marked, each other one with a button that ends it.

    Like the main page it never creates a session: a visitor who is not logged in (or whose
    session was just ended from another browser) is sent to the login form.
    """
    if session.id is None or session.user_id is None:
        return HTTPSeeOther(location="/")
    token = escape(session.csrf_token)
    hidden = f'<input type="hidden" name="csrf_token" value="{token}">'
    parts = ["<!doctype html>", "<title>Your sessions</title>"]
    messages = session.pop_flash() if request.method == "GET" else []  # HEAD keeps them
    if messages:
        items = "".join(f'<li class="flash">{escape(str(m))}</li>' for m in messages)
        parts.append(f'<ul id="flashes">{items}</ul>')
    listed = sorted(session.user_sessions(), key=lambda s: not s.current)  # then oldest first
    rows = []
    for info in listed:
        agent = escape(str(info.info.get("user_agent") or "an unknown browser"))
        seen = f"signed in {_when(info.created)}, last seen {_when(info.last_seen)}"
        if info.current:
            rows.append(f'<li class="session current">{agent}: {seen} (this browser)</li>')
        else:
            rows.append(
                f'<li class="session">{agent}: {seen} '
                f'<form class="revoke" method="post" action="/sessions/revoke">{hidden}'
                f'<input type="hidden" name="handle" value="{escape(info.handle)}">'
                '<button type="submit">Log out this session</button></form></li>'
            )
    parts.append(f'<ul id="sessions">{"".join(rows)}</ul>')
    if len(listed) > 1:
        parts.append(
            f'<form id="revoke-others" method="post" action="/sessions/revoke-others">{hidden}'
            '<button type="submit">Log out all other sessions</button></form>'
        )
    parts.append('<p><a href="/">Back</a></p>')
    response = Response("\n".join(parts), content_type="text/html", charset="utf-8")
    response.cache_control.no_store = True
    return response


def revoke(request: Request, session: Session) -> Response:
    """End one of the user's other sessions, named by the handle the sessions page showed."""
    if session.user_id is None:
        return HTTPSeeOther(location="/")
    # A handle names a session only to its user's own sessions: it opens nothing by itself.
    ended = session.revoke_session(field(request, "handle"))
    session.flash("That session is logged out." if ended else "That session had already ended.")
    return HTTPSeeOther(location="/sessions")


def revoke_others(request: Request, session: Session) -> Response:
    """End every session of the user but this one ("log out everywhere else")."""
    if session.user_id is None:
        return HTTPSeeOther(location="/")
    count = session.revoke_other_sessions()
    session.flash(f"Logged out {count} other session{'' if count == 1 else 's'}.")
    return HTTPSeeOther(location="/sessions")


#: GET pages; they never create a session.
PAGES: dict[str, Callable[[Request, Session], Response]] = {
    "/": page,
    "/sessions": sessions_page,
}

#: POST routes; every one of them checks a CSRF token first.
ACTIONS: dict[str, Callable[[Request, Session], Response]] = {
    LOGIN_PATH: login,
    "/logout": logout,
    "/note": save_note,
    "/sessions/revoke": revoke,
    "/sessions/revoke-others": revoke_others,
}


def respond(request: Request) -> Response:
    """Route a request to the page or to a form's action."""
    session = get_session(request.environ)
    show = PAGES.get(request.path_info)
    if show is not None:
        if request.method not in ("GET", "HEAD"):
            return HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD"})
        return show(request, session)
    action = ACTIONS.get(request.path_info)
    if action is None:
        return HTTPNotFound()
    if request.method != "POST":
        return HTTPMethodNotAllowed(headers={"Allow": "POST"})
    if request.path_info == LOGIN_PATH:
        token_ok = login_token_matches(request)
    else:
        token_ok = session.check_csrf_token(submitted_token(request.environ))
    if not token_ok:
        return HTTPForbidden(
            "This form has expired or came from another site. Go back, reload the page and "
            "try again."
        )
    return action(request, session)


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI application, before the session middleware is put around it."""
    response = respond(Request(environ))
    return response(environ, start_response)


def secret_keys_from_env() -> list[str] | None:
    """The signing keys in WSGISESSION_SECRET (comma-separated, newest first), or None."""
    keys = [key.strip() for key in os.environ.get("WSGISESSION_SECRET", "").split(",")]
    return [key for key in keys if key] or None


def describe(environ: Mapping[str, Any]) -> dict[str, str]:
    """What the sessions page shows of the browser a login came from: its user agent, cut short.

    The middleware calls it when a session is bound to a user, and keeps the answer with that
    session; sessions bound to no login keep nothing about their browser.
    """
    agent = environ.get("HTTP_USER_AGENT")
    return {"user_agent": str(agent)[:AGENT_LIMIT]} if agent else {}


app = SessionMiddleware(
    application,
    store=store_from_url(os.environ.get("WSGISESSION_STORE", "sqlite:///login-sessions.db")),
    secret_keys=secret_keys_from_env(),
    max_age=MAX_AGE,
    describe=describe,
)
