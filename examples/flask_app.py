"""wsgisession in a Flask application, in place of Flask's signed-cookie session.

Run it (from the repository root, after ``make venv``)::

    .venv/bin/gunicorn -c examples/gunicorn.conf.py --chdir examples flask_app:app

The one line that matters wraps ``app.wsgi_app``, so ``app`` stays a Flask object (its CLI, test
client and extensions keep working)::

    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store_from_url(...))

A view reaches the session with ``get_session(request.environ)``. Flask's own ``flask.session``
is left unused: the two are separate.
"""

from __future__ import annotations

import os

from flask import Flask, abort, redirect, render_template_string, request
from werkzeug.wrappers import Response

from wsgisession import Session, SessionMiddleware, get_session, store_from_url

app = Flask(__name__)
app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
    app.wsgi_app,
    store=store_from_url(os.environ.get("WSGISESSION_STORE", "sqlite:///flask-sessions.db")),
    secret_keys=[k for k in os.environ.get("WSGISESSION_SECRET", "").split(",") if k] or None,
)

PAGE = """<!doctype html>
<title>wsgisession with Flask</title>
{% for message in messages %}<p class="flash">{{ message }}</p>{% endfor %}
<p id="visits">Visit number {{ visits }}.</p>
<p id="name">{% if name %}Hello, {{ name }}!{% else %}Who are you?{% endif %}</p>
<form method="post" action="/name">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <input name="name" value="{{ name or '' }}"> <button>Save</button>
</form>
<form method="post" action="/forget">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <button>Forget me</button>
</form>
"""


def session() -> Session:
    """This request's session (the middleware put it in the WSGI environ)."""
    return get_session(request.environ)


@app.before_request
def check_csrf() -> None:
    """Refuse any POST whose form does not carry this session's CSRF token."""
    if request.method == "POST" and not session().check_csrf_token(request.form.get("csrf_token")):
        abort(403, "This form has expired or came from another site; reload and try again.")


@app.get("/")
def index() -> str:
    """Count the visits, greet by name, show the flash messages once."""
    current = session()
    return render_template_string(
        PAGE,
        visits=current.increment("visits"),
        name=current.get("name"),
        messages=current.pop_flash(),
        csrf_token=current.csrf_token,
    )


@app.post("/name")
def set_name() -> Response:
    """Remember the visitor's name (at most 50 characters)."""
    name = request.form.get("name", "").strip()[:50]
    current = session()
    current["name"] = name
    current.flash(f"Saved your name, {name}." if name else "Saved: no name.")
    return redirect("/", code=303)


@app.post("/forget")
def forget() -> Response:
    """End the session: its record is deleted and the cookie expired."""
    session().destroy()
    return redirect("/", code=303)
