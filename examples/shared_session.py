"""One session shared by a Flask, a Django, a Pyramid and a plain WSGI app, under one gunicorn.

Each app uses its framework's own session: ``flask.session`` (wsgisession.integrations.flask),
Django's ``request.session`` (the wsgisession SESSION_ENGINE), Pyramid's ``request.session``
(wsgisession.integrations.pyramid) and ``get_session(environ)`` (SessionMiddleware). They
share one store, one cookie name and one set of signing keys, so a visitor has one session:
what one app sets, the others read, and a logout in any of them ends it for all. A team moving
from one framework to another can serve both side by side.

Run it from the repository root::

    WSGISESSION_STORE=sqlite:///shared.db WSGISESSION_SECRET=newest-key,older-key \\
        .venv/bin/gunicorn -c examples/gunicorn.conf.py --chdir examples shared_session:app

then visit ``/flask/set?colour=blue``, ``/django/get``, ``/pyramid/get`` and ``/wsgi/get``
(each answers with the session's keys as JSON), ``/<app>/set?k=v`` to set keys and
``/<app>/logout`` to end it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import django
import flask
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from pyramid.config import Configurator
from pyramid.request import Request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from wsgisession import SessionMiddleware, get_session, store_from_url
from wsgisession.integrations import flask as flask_integration
from wsgisession.integrations import pyramid as pyramid_integration

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: What the apps must agree on: the store, the cookie's name and the signing keys.
STORE = store_from_url(os.environ.get("WSGISESSION_STORE", "sqlite:///shared.db"))
COOKIE_NAME = "wsgisession"
KEYS = [key for key in os.environ.get("WSGISESSION_SECRET", "").split(",") if key] or [
    "change-me: WSGISESSION_SECRET=newest-key,older-key"
]
#: The idle timeout, the same everywhere (each app applies its own when it writes).
MAX_AGE = 14 * 24 * 3600


# The plain WSGI app, at /wsgi ------------------------------------------------------------------


def _wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    session = get_session(environ)
    action = environ.get("PATH_INFO", "/").strip("/")
    if action == "set":
        from urllib.parse import parse_qsl

        session.update(parse_qsl(environ.get("QUERY_STRING", "")))
    elif action == "logout":
        session.destroy()
    body = json.dumps(dict(session)).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


wsgi_app = SessionMiddleware(
    _wsgi_app, store=STORE, cookie_name=COOKIE_NAME, secret_keys=KEYS, max_age=MAX_AGE
)


# The Flask app, at /flask ------------------------------------------------------------------------

flask_app = flask.Flask("shared_flask")
flask_app.config.update(
    SECRET_KEY=KEYS[0],
    SECRET_KEY_FALLBACKS=KEYS[1:],
    SESSION_COOKIE_NAME=COOKIE_NAME,
    PERMANENT_SESSION_LIFETIME=timedelta(seconds=MAX_AGE),
    WSGISESSION_STORE=STORE,
)
flask_integration.init_app(flask_app)


@flask_app.get("/set")
def flask_set() -> Any:
    flask.session.update(flask.request.args.items())
    return dict(flask.session)


@flask_app.get("/get")
def flask_get() -> Any:
    return dict(flask.session)


@flask_app.get("/logout")
def flask_logout() -> Any:
    flask.session.clear()
    return {}


# The Django app, at /django ----------------------------------------------------------------------


def django_set(request: HttpRequest) -> HttpResponse:
    for key, value in request.GET.items():
        request.session[key] = value
    return JsonResponse(dict(request.session.items()))


def django_get(request: HttpRequest) -> HttpResponse:
    return JsonResponse(dict(request.session.items()))


def django_logout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return JsonResponse({})


urlpatterns = [
    path("set", django_set),
    path("get", django_get),
    path("logout", django_logout),
]

settings.configure(
    SECRET_KEY=KEYS[0],
    SECRET_KEY_FALLBACKS=KEYS[1:],
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["django.contrib.sessions"],
    MIDDLEWARE=[
        "wsgisession.integrations.django.SessionPolicyMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
    ],
    SESSION_ENGINE="wsgisession.integrations.django",
    SESSION_COOKIE_NAME=COOKIE_NAME,
    SESSION_COOKIE_AGE=MAX_AGE,
    WSGISESSION_STORE=STORE,
    USE_TZ=True,
)
django.setup()
django_app = get_wsgi_application()


# The Pyramid app, at /pyramid --------------------------------------------------------------------


def pyramid_set(request: Request) -> Any:
    request.session.update(request.GET.items())
    return dict(request.session)


def pyramid_get(request: Request) -> Any:
    return dict(request.session)


def pyramid_logout(request: Request) -> Any:
    request.session.invalidate()
    return {}


with Configurator() as config:
    config.set_session_factory(
        pyramid_integration.session_factory(
            STORE, cookie_name=COOKIE_NAME, secret_keys=KEYS, max_age=MAX_AGE
        )
    )
    for name, view in (("set", pyramid_set), ("get", pyramid_get), ("logout", pyramid_logout)):
        config.add_route(name, "/" + name)
        config.add_view(view, route_name=name, renderer="json")
    pyramid_app = config.make_wsgi_app()


# The four behind path prefixes -------------------------------------------------------------------


def _index(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [
        b"One session, four apps: /flask/get, /django/get, /pyramid/get, /wsgi/get "
        b"(and /set?k=v, /logout)\n"
    ]


app = DispatcherMiddleware(
    _index,
    {
        "/flask": flask_app.wsgi_app,
        "/django": django_app,
        "/pyramid": pyramid_app,
        "/wsgi": wsgi_app,
    },
)
