"""Each framework's own login on one wsgisession store, for gunicorn: Flask, Django and Pyramid.

The live framework tests serve it (``tests.support.framework_logins:app``) once per server store.
``WSGISESSION_STORE`` names the store, ``WSGISESSION_TEST_STORE_OPTIONS`` its extra options (a
Redis prefix, a PostgreSQL table), ``WSGISESSION_TEST_FOLDER`` a folder for Django's SQLite
database (migrated at import, holding the user ``alice`` with the password ``pw``). The three
apps share the store, the cookie name and the keys, so they also share one session.

Routes, under ``/flask``, ``/django`` and ``/pyramid`` alike (JSON answers): ``/login?u=&p=``
(the framework's login: Flask-Login's ``login_user``, ``django.contrib.auth.login``, Pyramid's
``remember`` over ``SessionAuthenticationHelper``), ``/me`` (the logged-in user, or null) and
``/logout`` (``logout_user``, ``django.contrib.auth.logout``, ``forget`` then ``invalidate``).
Pyramid also has ``/flash?m=``, ``/flashes`` (pops them), ``/csrf`` (the token) and ``/form``
(a POST the CSRF check guards).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import django
import flask
import flask_login
from django.conf import settings
from django.contrib import auth as django_auth
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.request import Request
from pyramid.security import forget, remember
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from tests.support.pyramid_policy import SecurityPolicy
from wsgisession import store_from_url
from wsgisession.integrations import flask as flask_integration
from wsgisession.integrations.pyramid import session_factory

STORE = store_from_url(
    os.environ["WSGISESSION_STORE"],
    **json.loads(os.environ.get("WSGISESSION_TEST_STORE_OPTIONS", "{}")),
)
COOKIE_NAME = "wsgisession"
KEYS = ["framework-logins-newest", "framework-logins-older"]
USERS = {"alice": "pw"}


# Flask and Flask-Login, at /flask -----------------------------------------------------------------

flask_app = flask.Flask("framework_logins")
flask_app.config.update(
    SECRET_KEY=KEYS[0], SESSION_COOKIE_NAME=COOKIE_NAME, WSGISESSION_STORE=STORE
)
flask_integration.init_app(flask_app)
manager = flask_login.LoginManager(flask_app)


class FlaskUser(flask_login.UserMixin):
    """A user of USERS, as Flask-Login wants one."""

    def __init__(self, name: str) -> None:
        self.id = name


@manager.user_loader
def load_flask_user(name: str) -> FlaskUser | None:
    return FlaskUser(name) if name in USERS else None


@flask_app.get("/login")
def flask_login_view() -> Any:
    name = flask.request.args.get("u", "")
    if USERS.get(name) != flask.request.args.get("p"):
        return {"user": None}, 403
    flask_login.login_user(FlaskUser(name))
    return {"user": name}


@flask_app.get("/me")
def flask_me() -> Any:
    user = flask_login.current_user
    return {"user": user.id if user.is_authenticated else None}


@flask_app.get("/logout")
def flask_logout() -> Any:
    flask_login.logout_user()
    return {"user": None}


# Django and django.contrib.auth, at /django -------------------------------------------------------


def django_login(request: HttpRequest) -> HttpResponse:
    user = django_auth.authenticate(
        request, username=request.GET.get("u", ""), password=request.GET.get("p", "")
    )
    if user is None:
        return JsonResponse({"user": None}, status=403)
    django_auth.login(request, user)  # a new session id: no fixation
    return JsonResponse({"user": user.get_username()})


def django_me(request: HttpRequest) -> HttpResponse:
    user = request.user
    return JsonResponse({"user": user.get_username() if user.is_authenticated else None})


def django_logout(request: HttpRequest) -> HttpResponse:
    django_auth.logout(request)  # flushes the session
    return JsonResponse({"user": None})


urlpatterns = [
    path("login", django_login),
    path("me", django_me),
    path("logout", django_logout),
]

_folder = Path(os.environ.get("WSGISESSION_TEST_FOLDER", "."))
settings.configure(
    SECRET_KEY=KEYS[0],
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
    ],
    MIDDLEWARE=[
        "wsgisession.integrations.django.SessionPolicyMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_folder / "django.db")}
    },
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    SESSION_ENGINE="wsgisession.integrations.django",
    SESSION_COOKIE_NAME=COOKIE_NAME,
    WSGISESSION_STORE=STORE,
    USE_TZ=True,
)
django.setup()
call_command("migrate", verbosity=0)
_users = django_auth.get_user_model().objects
for _name, _password in USERS.items():
    if not _users.filter(username=_name).exists():
        _users.create_user(_name, password=_password)
connections.close_all()  # gunicorn forks after this import: no connection crosses the fork
django_app = get_wsgi_application()


# Pyramid and SessionAuthenticationHelper, at /pyramid ---------------------------------------------


def pyramid_login(request: Request) -> Any:
    name = request.GET.get("u", "")
    if USERS.get(name) != request.GET.get("p"):
        request.response.status = 403
        return {"user": None}
    request.session.regenerate()  # a new id at login: no fixation
    request.response.headers.extend(remember(request, name))
    return {"user": name}


def pyramid_me(request: Request) -> Any:
    return {"user": request.authenticated_userid}


def pyramid_logout(request: Request) -> Any:
    request.response.headers.extend(forget(request))
    request.session.invalidate()
    return {"user": None}


def pyramid_flash(request: Request) -> Any:
    request.session.flash(request.GET["m"])
    return "ok"


def pyramid_flashes(request: Request) -> Any:
    return request.session.pop_flash()


def pyramid_csrf(request: Request) -> Any:
    from pyramid.csrf import get_csrf_token

    return get_csrf_token(request)


def pyramid_form(request: Request) -> Any:
    return "accepted"


with Configurator() as config:
    config.set_session_factory(session_factory(STORE, cookie_name=COOKIE_NAME, secret_keys=KEYS))
    config.set_security_policy(SecurityPolicy())
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
    for _route, _view, _method in (
        ("login", pyramid_login, None),
        ("me", pyramid_me, None),
        ("logout", pyramid_logout, None),
        ("flash", pyramid_flash, None),
        ("flashes", pyramid_flashes, None),
        ("csrf", pyramid_csrf, None),
        ("form", pyramid_form, "POST"),
    ):
        config.add_route(_route, "/" + _route)
        config.add_view(_view, route_name=_route, renderer="json", request_method=_method)
    pyramid_app = config.make_wsgi_app()


def _index(environ: Any, start_response: Any) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"/flask, /django, /pyramid\n"]


app = DispatcherMiddleware(
    _index, {"/flask": flask_app.wsgi_app, "/django": django_app, "/pyramid": pyramid_app}
)
