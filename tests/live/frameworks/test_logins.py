"""Each framework's own login under gunicorn, on every server store, through real HTTP.

``tests/support/framework_logins.py`` (Flask-Login, django.contrib.auth and Pyramid's
SessionAuthenticationHelper on one store) runs under gunicorn with several workers, once per
store (SQLite, Redis, PostgreSQL). A login holds across requests served by different workers;
a logout through the framework leaves no way back in, even for a replay of the old cookie.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.frameworks.conftest import need
from tests.support.servers import ROOT, Server, serve
from tests.support.stores import LOAD_STORES, make_backend

need("django")
need("flask")
need("flask_login")
need("pyramid")

FRAMEWORKS = ("flask", "django", "pyramid")
COOKIE = "wsgisession"
WORKERS = 3


@pytest.fixture(scope="module", params=LOAD_STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The login app under gunicorn on one store of each kind, its data removed afterwards."""
    folder = tmp_path_factory.mktemp(f"logins-{request.param}")
    backend = make_backend(str(request.param), folder, request)
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**backend.env(), "WSGISESSION_TEST_FOLDER": str(folder), "PYTHONPATH": python_path}
    try:
        with serve("tests.support.framework_logins:app", env, Path(folder), WORKERS) as running:
            yield running
    finally:
        backend.cleanup()


def me(client: requests.Session, server: Server, framework: str) -> object:
    """Who *framework* says is logged in (None for anonymous)."""
    response = client.get(f"{server.url}/{framework}/me", timeout=10)
    assert response.status_code == 200, (response.status_code, response.text, server.log())
    return response.json()["user"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_logout_leaves_no_way_back_in_with_the_old_cookie(server: Server, framework: str) -> None:
    """Log in, stay logged in across workers, log out; the old cookie replayed is anonymous."""
    browser = requests.Session()
    assert me(browser, server, framework) is None
    refused = browser.get(f"{server.url}/{framework}/login", params={"u": "alice", "p": "no"})
    assert refused.status_code == 403
    assert me(browser, server, framework) is None
    login = browser.get(
        f"{server.url}/{framework}/login", params={"u": "alice", "p": "pw"}, timeout=10
    )
    assert login.status_code == 200 and login.json() == {"user": "alice"}, login.text
    old = browser.cookies[COOKIE]
    # Enough requests that every worker answers some (gunicorn's sync workers share the socket).
    assert [me(browser, server, framework) for _ in range(4 * WORKERS)] == ["alice"] * 4 * WORKERS
    assert browser.cookies[COOKIE] == old  # one session: no worker made another
    logout = browser.get(f"{server.url}/{framework}/logout", timeout=10)
    assert logout.status_code == 200, logout.text
    assert me(browser, server, framework) is None
    for _ in range(2 * WORKERS):
        replay = requests.Session()
        replay.cookies.set(COOKIE, old)
        assert me(replay, server, framework) is None
        assert all(me(replay, server, other) is None for other in FRAMEWORKS)


def test_a_login_is_shared_by_one_cookie_but_each_framework_keeps_its_own(server: Server) -> None:
    """One cookie carries all three logins; a logout in one framework ends the session for all."""
    browser = requests.Session()
    for framework in FRAMEWORKS:
        login = browser.get(
            f"{server.url}/{framework}/login", params={"u": "alice", "p": "pw"}, timeout=10
        )
        assert login.status_code == 200, login.text
    cookie = browser.cookies[COOKIE]
    assert [me(browser, server, f) for f in FRAMEWORKS] == ["alice"] * 3
    browser.get(f"{server.url}/django/logout", timeout=10)
    replay = requests.Session()
    replay.cookies.set(COOKIE, cookie)
    assert [me(replay, server, f) for f in FRAMEWORKS] == [None] * 3


def test_pyramid_flash_and_csrf_under_gunicorn(server: Server) -> None:
    """Pyramid's flash queue and session CSRF token hold across workers; a bad token is refused."""
    browser = requests.Session()
    base = f"{server.url}/pyramid"
    for message in ("one", "two"):
        assert browser.get(f"{base}/flash", params={"m": message}, timeout=10).status_code == 200
    assert browser.get(f"{base}/flashes", timeout=10).json() == ["one", "two"]
    assert browser.get(f"{base}/flashes", timeout=10).json() == []
    token = browser.get(f"{base}/csrf", timeout=10).json()
    assert [browser.get(f"{base}/csrf", timeout=10).json() for _ in range(WORKERS)] == [
        token
    ] * WORKERS
    accepted = browser.post(f"{base}/form", data={"csrf_token": token}, timeout=10)
    assert accepted.status_code == 200 and accepted.json() == "accepted", accepted.text
    forged = browser.post(f"{base}/form", data={"csrf_token": "forged"}, timeout=10)
    assert forged.status_code == 400, forged.text
    stranger = requests.post(f"{base}/form", data={"csrf_token": token}, timeout=10)
    assert stranger.status_code == 400, stranger.text
