"""The middleware around real frameworks: Flask, Bottle, Falcon, Pyramid and Django.

Each framework gets the same tiny application, written the way its users write views, with the
session reached through ``get_session(environ)``:

    /count   adds one to a counter in the session and answers with the new value
    /login   regenerate(), then sets ``user`` (what a login view does)
    /whoami  answers with ``user``, or "nobody"
    /logout  destroy()

The frameworks come from the ``frameworks`` extra, which ``make test`` installs. A missing one
skips its tests with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import webtest

from tests.support.clients import cookie_attributes, session_cookie
from wsgisession import (
    SessionMiddleware,
    SessionNotInstalledError,
    SqliteStore,
    Store,
    get_session,
)


def need(module: str) -> ModuleType:
    """Import a framework, skipping the test when it is missing (failing under CI=true)."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    reason = f"{module} is not installed: pip install --group frameworks (make venv does)"
    return pytest.importorskip(module, reason=reason)


WSGIApp = Callable[..., Any]


# One tiny application per framework; each returns the bare framework app (no middleware) ------


def flask_app() -> WSGIApp:
    """A Flask app; Flask users wrap ``app.wsgi_app`` so ``app`` stays a Flask object."""
    flask = need("flask")
    app = flask.Flask("wsgisession_flask_test")
    app.testing = True  # let exceptions out of the view, so tests see them

    @app.get("/count")
    def count() -> str:
        return str(get_session(flask.request.environ).increment("n"))

    @app.get("/login")
    def login() -> str:
        session = get_session(flask.request.environ)
        session.regenerate()
        session["user"] = flask.request.args.get("user", "alice")
        return "welcome"

    @app.get("/whoami")
    def whoami() -> str:
        return str(get_session(flask.request.environ).get("user", "nobody"))

    @app.get("/logout")
    def logout() -> str:
        get_session(flask.request.environ).destroy()
        return "bye"

    return app  # type: ignore[no-any-return]


def bottle_app() -> WSGIApp:
    """A Bottle app with its own Bottle() object (not the module-level default app)."""
    bottle = need("bottle")
    app = bottle.Bottle()
    app.config["catchall"] = False  # let exceptions out of the view, so tests see them

    @app.get("/count")
    def count() -> str:
        return str(get_session(bottle.request.environ).increment("n"))

    @app.get("/login")
    def login() -> str:
        session = get_session(bottle.request.environ)
        session.regenerate()
        session["user"] = bottle.request.query.get("user", "alice")
        return "welcome"

    @app.get("/whoami")
    def whoami() -> str:
        return str(get_session(bottle.request.environ).get("user", "nobody"))

    @app.get("/logout")
    def logout() -> str:
        get_session(bottle.request.environ).destroy()
        return "bye"

    return app  # type: ignore[no-any-return]


def falcon_app() -> WSGIApp:
    """A Falcon WSGI app with one resource per route; Falcon gives views ``req.env``."""
    falcon = need("falcon")

    class Count:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.text = str(get_session(req.env).increment("n"))

    class Login:
        def on_get(self, req: Any, resp: Any) -> None:
            session = get_session(req.env)
            session.regenerate()
            session["user"] = req.get_param("user", default="alice")
            resp.text = "welcome"

    class WhoAmI:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.text = str(get_session(req.env).get("user", "nobody"))

    class Logout:
        def on_get(self, req: Any, resp: Any) -> None:
            get_session(req.env).destroy()
            resp.text = "bye"

    app = falcon.App()
    app.add_route("/count", Count())
    app.add_route("/login", Login())
    app.add_route("/whoami", WhoAmI())
    app.add_route("/logout", Logout())
    return app  # type: ignore[no-any-return]


def pyramid_app() -> WSGIApp:
    """A Pyramid app built with a Configurator; views reach ``request.environ``."""
    need("pyramid")
    from pyramid.config import Configurator
    from pyramid.response import Response

    def count(request: Any) -> Response:
        return Response(str(get_session(request.environ).increment("n")))

    def login(request: Any) -> Response:
        session = get_session(request.environ)
        session.regenerate()
        session["user"] = request.params.get("user", "alice")
        return Response("welcome")

    def whoami(request: Any) -> Response:
        return Response(str(get_session(request.environ).get("user", "nobody")))

    def logout(request: Any) -> Response:
        get_session(request.environ).destroy()
        return Response("bye")

    with Configurator() as config:
        for name, view in [
            ("count", count),
            ("login", login),
            ("whoami", whoami),
            ("logout", logout),
        ]:
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name)
        return config.make_wsgi_app()  # type: ignore[no-any-return]


# Django needs a settings module; this test module is its URLconf. ----------------------------


def _django_count(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(str(get_session(request.environ).increment("n")))


def _django_login(request: Any) -> Any:
    from django.http import HttpResponse

    session = get_session(request.environ)
    session.regenerate()
    session["user"] = request.GET.get("user", "alice")
    return HttpResponse("welcome")


def _django_whoami(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(str(get_session(request.environ).get("user", "nobody")))


def _django_logout(request: Any) -> Any:
    from django.http import HttpResponse

    get_session(request.environ).destroy()
    return HttpResponse("bye")


urlpatterns: list[Any] = []


def django_app() -> WSGIApp:
    """Django through its own WSGI handler, with no session middleware of its own.

    Django's settings are configured once per process, by the Django tests' project
    (tests/frameworks/django_project); this app only swaps in its URLconf and an empty
    MIDDLEWARE (wsgisession is the session layer here), request by request.
    """
    need("django")
    from django.test import override_settings
    from django.urls import path

    from tests.frameworks import django_project

    django_project.configure()
    if not urlpatterns:
        urlpatterns.extend(
            [
                path("count", _django_count),
                path("login", _django_login),
                path("whoami", _django_whoami),
                path("logout", _django_logout),
            ]
        )
    from django.core.wsgi import get_wsgi_application

    with override_settings(MIDDLEWARE=[]):
        handler = get_wsgi_application()

    def app(environ: Any, start_response: Any) -> Any:
        with override_settings(ROOT_URLCONF=__name__):
            return handler(environ, start_response)

    return app


FRAMEWORKS: dict[str, Callable[[], WSGIApp]] = {
    "flask": flask_app,
    "bottle": bottle_app,
    "falcon": falcon_app,
    "pyramid": pyramid_app,
    "django": django_app,
}


@pytest.fixture(params=sorted(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> str:
    """The name of the framework under test."""
    return str(request.param)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    """A fresh SQLite store: what these apps would run with in production."""
    return SqliteStore(tmp_path / "sessions.db")


def wrapped(framework: str, store: Store, **options: Any) -> webtest.TestApp:
    """The framework's app wrapped in the middleware the way its users do it, as a client."""
    app = FRAMEWORKS[framework]()
    if framework == "flask":
        app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store, **options)  # type: ignore[attr-defined]
        return webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})
    return webtest.TestApp(
        SessionMiddleware(app, store=store, **options), extra_environ={"HTTP_HOST": "localhost"}
    )


# The tests -------------------------------------------------------------------------------------


def test_counter_rises_per_visitor(framework: str, sqlite_store: Store) -> None:
    """A view's session change is saved and comes back on the visitor's next request only."""
    alice = wrapped(framework, sqlite_store)
    assert [alice.get("/count").text for _ in range(3)] == ["1", "2", "3"]
    bob = webtest.TestApp(alice.app, extra_environ={"HTTP_HOST": "localhost"})
    assert bob.get("/count").text == "1"
    assert alice.get("/count").text == "4"


def test_cookie_attributes_survive_the_framework(framework: str, sqlite_store: Store) -> None:
    """The framework's response keeps the middleware's cookie and caching headers intact."""
    client = wrapped(framework, sqlite_store, secret_keys="k1")
    response = client.get("/count")
    attributes = cookie_attributes(response)
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert "Cookie" in response.headers["Vary"]
    assert "private" in response.headers["Cache-Control"]
    value = session_cookie(response)
    assert value is not None and value.count(".") == 1  # id.signature


def test_reading_only_sets_no_cookie(framework: str, sqlite_store: Store) -> None:
    """A view that only reads the session sends no Set-Cookie through any framework."""
    client = wrapped(framework, sqlite_store)
    client.get("/count")
    response = client.get("/whoami")
    assert response.text == "nobody"
    assert session_cookie(response) is None
    assert "Cookie" in response.headers["Vary"]


def test_login_regenerates_and_logout_destroys(framework: str, sqlite_store: Store) -> None:
    """Login moves the session to a new id keeping its data; logout ends it for good."""
    client = wrapped(framework, sqlite_store)
    first = session_cookie(client.get("/count"))
    login = client.get("/login?user=carol")
    second = session_cookie(login)
    assert second is not None and second != first
    assert client.get("/whoami").text == "carol"
    assert client.get("/count").text == "2"  # regenerate() kept the data

    logout = client.get("/logout")
    assert any("Max-Age=0" in h for h in logout.headers.getall("Set-Cookie"))
    assert client.get("/whoami").text == "nobody"
    # The old cookie no longer opens anything, even when replayed.
    replay = webtest.TestApp(client.app, extra_environ={"HTTP_HOST": "localhost"})
    replay.set_cookie("wsgisession", second)
    assert replay.get("/whoami").text == "nobody"


def test_get_session_without_middleware_says_what_to_do() -> None:
    """A Flask view calling get_session() on an unwrapped app learns to install the middleware."""
    client = webtest.TestApp(flask_app())
    with pytest.raises(SessionNotInstalledError) as caught:
        client.get("/count")
    message = str(caught.value)
    assert "SessionMiddleware(app, store=" in message
    assert "environ['wsgisession']" in message


def test_get_session_with_a_custom_environ_key(sqlite_store: Store) -> None:
    """get_session() finds the session under a custom environ_key and explains a mismatch."""
    bottle = need("bottle")
    app = bottle.Bottle()
    app.config["catchall"] = False

    @app.get("/")
    def index() -> str:
        return str(get_session(bottle.request.environ, "myapp.session").increment("n"))

    @app.get("/wrong")
    def wrong() -> str:
        return str(get_session(bottle.request.environ).get("n"))

    middleware = SessionMiddleware(app, store=sqlite_store, environ_key="myapp.session")
    client = webtest.TestApp(middleware)
    assert client.get("/").text == "1"
    with pytest.raises(SessionNotInstalledError, match="same environ_key"):
        client.get("/wrong")
