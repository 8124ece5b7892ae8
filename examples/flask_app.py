"""wsgisession as Flask's own session: ``flask.session``, ``flash()`` and the test client.

Run it (from the repository root, after ``make venv``)::

    .venv/bin/gunicorn -c examples/gunicorn.conf.py --chdir examples flask_app:app

The one line that matters is ``init_app(app)``: it reads ``WSGISESSION_STORE`` (a store URL)
and Flask's own settings from ``app.config``, and makes wsgisession the app's session
interface. Views use ``flask.session`` and ``flash()`` as in any Flask app; the session lives
in the store, under a hash of its id, and ``session.clear()`` moves it to a new id.
"""

from __future__ import annotations

import os

from flask import (
    Flask,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template_string,
    request,
    session,
)
from werkzeug.wrappers import Response

from wsgisession.integrations.flask import init_app

KEYS = [k for k in os.environ.get("WSGISESSION_SECRET", "").split(",") if k]

app = Flask(__name__)
app.config.update(
    WSGISESSION_STORE=os.environ.get("WSGISESSION_STORE", "sqlite:///flask-sessions.db"),
    SECRET_KEY=KEYS[0] if KEYS else None,  # signs the cookie; the rest still verify
    SECRET_KEY_FALLBACKS=KEYS[1:],
)
init_app(app)

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


@app.before_request
def check_csrf() -> None:
    """Refuse any POST whose form does not carry this session's CSRF token."""
    if request.method == "POST" and not session.check_csrf_token(request.form.get("csrf_token")):
        abort(403, "This form has expired or came from another site; reload and try again.")


@app.get("/")
def index() -> str:
    """Count the visits, greet by name, show the flash messages once."""
    return render_template_string(
        PAGE,
        visits=session.increment("visits"),
        name=session.get("name"),
        messages=get_flashed_messages(),
        csrf_token=session.csrf_token,
    )


@app.post("/name")
def set_name() -> Response:
    """Remember the visitor's name (at most 50 characters)."""
    name = request.form.get("name", "").strip()[:50]
    session["name"] = name
    flash(f"Saved your name, {name}." if name else "Saved: no name.")
    return redirect("/", code=303)


@app.post("/forget")
def forget() -> Response:
    """Forget the visitor: clear() ends the old session id (its record is deleted)."""
    session.clear()
    return redirect("/", code=303)
