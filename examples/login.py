"""Log in and out on plain WSGI with WebOb: a page counter, flash messages and CSRF-checked forms.

Run it (from the repository root)::

    .venv/bin/gunicorn -c examples/gunicorn.conf.py --chdir examples login:app

and open http://127.0.0.1:8000. The demo users are ``alice`` / ``wonderland`` and ``bob`` /
``builder``. What it shows:

- login calls ``session.regenerate()`` before it stores the user, so an id planted before login
  (session fixation) is worthless after it;
- logout calls ``session.destroy()``, then flashes "logged out": setting a key after destroy()
  starts a brand-new session, so the message survives the logout;
- flash messages are shown exactly once (``pop_flash()`` removes them as it reads them);
- every form carries ``session.csrf_token`` and every POST is refused with a 403 unless
  ``session.check_csrf_token(...)`` accepts it.

``WSGISESSION_STORE`` picks the store (``sqlite:///login-sessions.db`` by default) and
``WSGISESSION_SECRET`` gives the cookie-signing keys, comma-separated, newest first.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable
from html import escape
from typing import TYPE_CHECKING

from webob import Request, Response
from webob.exc import HTTPForbidden, HTTPMethodNotAllowed, HTTPNotFound, HTTPSeeOther

from wsgisession import Session, SessionMiddleware, get_session, store_from_url

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: Demo accounts. A real application keeps password hashes (argon2, scrypt), never passwords.
USERS = {"alice": "wonderland", "bob": "builder"}

#: The longest note the note form keeps.
NOTE_LIMIT = 200


def check_password(username: str, password: str) -> bool:
    """Tell whether *password* is *username*'s, in time that does not depend on where it differs."""
    expected = USERS.get(username, "\0 no such user")
    return hmac.compare_digest(expected.encode(), password.encode()) and username in USERS


def field(request: Request, name: str) -> str:
    """A text field of the posted form; "" when it is missing or is a file upload instead."""
    value = request.POST.get(name, "")
    return value if isinstance(value, str) else ""


def page(session: Session) -> Response:
    """The one page: messages, the counter, and the forms that fit the visitor's state."""
    views = session.increment("views")
    messages = session.pop_flash()
    user = session.get("user")
    token = escape(session.csrf_token)
    hidden = f'<input type="hidden" name="csrf_token" value="{token}">'
    parts = ["<!doctype html>", "<title>wsgisession login example</title>"]
    if messages:
        items = "".join(f'<li class="flash">{escape(str(m))}</li>' for m in messages)
        parts.append(f'<ul id="flashes">{items}</ul>')
    times = "once" if views == 1 else f"{views} times"
    parts.append(f'<p id="counter">You have viewed this page {times}.</p>')
    if user is None:
        parts.append(
            '<form id="login" method="post" action="/login">'
            f"{hidden}"
            '<label>User <input name="username" autocomplete="username"></label> '
            '<label>Password <input name="password" type="password" '
            'autocomplete="current-password"></label> '
            '<button type="submit">Log in</button></form>'
        )
    else:
        note = session.get("note")
        parts.append(f'<p id="user">Logged in as {escape(str(user))}.</p>')
        if note:
            parts.append(f'<p id="note">Your note: {escape(str(note))}</p>')
        parts.append(
            '<form id="note-form" method="post" action="/note">'
            f'{hidden}<input name="note" maxlength="{NOTE_LIMIT}"> '
            '<button type="submit">Save note</button></form>'
            f'<form id="logout" method="post" action="/logout">{hidden}'
            '<button type="submit">Log out</button></form>'
        )
    return Response("\n".join(parts), content_type="text/html", charset="utf-8")


def login(request: Request, session: Session) -> Response:
    """Check the credentials; on success move the session to a new id, then store the user."""
    username = field(request, "username").strip()
    if not check_password(username, field(request, "password")):
        session.flash("Wrong user name or password.")
        return HTTPSeeOther(location="/")
    session.regenerate()  # a new id at the moment the session gains privileges
    session["user"] = username
    session.flash(f"Welcome, {username}.")
    return HTTPSeeOther(location="/")


def logout(request: Request, session: Session) -> Response:
    """End the session, then start a new one that carries the goodbye message."""
    session.destroy()
    session.flash("logged out")
    return HTTPSeeOther(location="/")


def save_note(request: Request, session: Session) -> Response:
    """Keep a short note in the session of a logged-in user."""
    if session.get("user") is None:
        session.flash("Log in to keep a note.")
        return HTTPSeeOther(location="/")
    session["note"] = field(request, "note")[:NOTE_LIMIT]
    session.flash("note saved")
    return HTTPSeeOther(location="/")


#: POST routes; every one of them checks the CSRF token first.
ACTIONS: dict[str, Callable[[Request, Session], Response]] = {
    "/login": login,
    "/logout": logout,
    "/note": save_note,
}


def respond(request: Request) -> Response:
    """Route a request to the page or to a form's action."""
    session = get_session(request.environ)
    if request.path_info == "/":
        return page(session)
    action = ACTIONS.get(request.path_info)
    if action is None:
        return HTTPNotFound()
    if request.method != "POST":
        return HTTPMethodNotAllowed(headers={"Allow": "POST"})
    if not session.check_csrf_token(field(request, "csrf_token")):
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


app = SessionMiddleware(
    application,
    store=store_from_url(os.environ.get("WSGISESSION_STORE", "sqlite:///login-sessions.db")),
    secret_keys=secret_keys_from_env(),
)
