"""One session across Flask, Django, Pyramid and a plain WSGI app: ``examples/shared_session.py``
under gunicorn (two workers, one SQLite store), through real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.frameworks.conftest import need
from tests.support.servers import Server, serve

need("django")
need("flask")
need("pyramid")

APPS = ("flask", "django", "pyramid", "wsgi")
COOKIE = "wsgisession"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example under gunicorn, its sessions in a SQLite file of this module's own."""
    folder = tmp_path_factory.mktemp("shared")
    env = {
        "WSGISESSION_STORE": f"sqlite:///{folder}/shared.db",
        "WSGISESSION_SECRET": "newest-key,older-key",
    }
    with serve("shared_session:app", env, folder) as running:
        yield running


def read(client: requests.Session, server: Server, app: str) -> dict[str, str]:
    """The session's keys as *app* sees them."""
    response = client.get(f"{server.url}/{app}/get", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_what_one_app_sets_the_others_read(server: Server) -> None:
    """Each app sets a key in turn; every app then reads all of them, under one cookie."""
    client = requests.Session()
    expected: dict[str, str] = {}
    cookies = set()
    for app in APPS:
        response = client.get(f"{server.url}/{app}/set", params={f"from_{app}": app}, timeout=10)
        assert response.status_code == 200, response.text
        expected[f"from_{app}"] = app
        cookies.add(client.cookies[COOKIE])
        for reader in APPS:
            assert read(client, server, reader) == expected, (app, reader)
    assert len(cookies) == 1  # one session: the first app made it, the others kept it
    assert [c.name for c in client.cookies].count(COOKIE) == 1


@pytest.mark.parametrize("app", APPS)
def test_a_logout_in_one_app_ends_the_session_for_all(server: Server, app: str) -> None:
    """Logging out in any one app leaves nothing for the others, even with the old cookie."""
    client = requests.Session()
    client.get(f"{server.url}/wsgi/set", params={"user": "alice"}, timeout=10)
    old = client.cookies[COOKIE]
    assert all(read(client, server, reader) == {"user": "alice"} for reader in APPS)
    client.get(f"{server.url}/{app}/logout", timeout=10)
    replay = requests.Session()
    replay.cookies.set(COOKIE, old)
    for reader in APPS:
        assert read(client, server, reader) == {}, reader
        assert read(replay, server, reader) == {}, reader
