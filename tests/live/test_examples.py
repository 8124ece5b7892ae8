"""The examples do what their docstrings and the docs say, through webtest and gunicorn."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import requests
import webtest

import wsgisession
from tests.support.clients import cookie_attributes, session_cookie
from tests.support.servers import EXAMPLES, gunicorn_command, serve
from wsgisession import SqliteStore

ExampleLoader = Callable[[str], ModuleType]


@pytest.fixture
def load_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ExampleLoader:
    """Import an example afresh, with its sessions in a private SQLite file and signed cookies."""
    monkeypatch.setenv("WSGISESSION_STORE", f"sqlite:///{tmp_path}/sessions.db")
    monkeypatch.setenv("WSGISESSION_SECRET", "newest-key,older-key")

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def client(module: ModuleType) -> webtest.TestApp:
    """A browser-like client (with a cookie jar) for an example's ``app``."""
    return webtest.TestApp(module.app)


def csrf(page: webtest.TestResponse) -> str:
    """The CSRF token in the page's first form."""
    return str(page.html.find("input", {"name": "csrf_token"})["value"])


def flashes(page: webtest.TestResponse) -> list[str]:
    """The flash messages the page shows."""
    return [item.get_text() for item in page.html.select(".flash")]


# counter.py ----------------------------------------------------------------------------------


def test_counter_counts_each_visitor(load_example: ExampleLoader) -> None:
    """The page counter rises for one visitor and starts at one for another."""
    counter = load_example("counter")
    alice, bob = client(counter), client(counter)
    assert [alice.get("/").text for _ in range(3)][-1] == "Visited page 3 times\n"
    assert bob.get("/").text == "Visited page 1 times\n"


# login.py ------------------------------------------------------------------------------------


def login(browser: webtest.TestApp, user: str, password: str) -> webtest.TestResponse:
    """Fill in and send the login form; return the page the redirect leads to."""
    page = browser.get("/")
    form = page.forms["login"]
    form["username"], form["password"] = user, password
    return form.submit().follow()


def test_login_counter_rises_across_reloads(load_example: ExampleLoader) -> None:
    """Each reload of the page adds one to the counter of a visitor who has a session."""
    browser = client(load_example("login"))
    login(browser, "alice", "wonderland")
    texts = [browser.get("/").html.find(id="counter").get_text() for _ in range(3)]
    assert texts == [
        "You have viewed this page 2 times.",
        "You have viewed this page 3 times.",
        "You have viewed this page 4 times.",
    ]
    browser.head("/")  # HEAD shows the page without counting a view
    assert browser.get("/").html.find(id="counter").get_text() == (
        "You have viewed this page 5 times."
    )


def test_login_regenerates_and_welcomes_once(load_example: ExampleLoader) -> None:
    """A good login gets a new session id, shows the user, and the welcome only once."""
    browser = client(load_example("login"))
    login(browser, "alice", "guess")  # a wrong password starts a (short-lived) session
    before = browser.cookies["wsgisession"]
    page = login(browser, "alice", "wonderland")
    assert browser.cookies["wsgisession"] != before
    assert page.html.find(id="user").get_text() == "Logged in as alice."
    assert flashes(page) == ["Welcome, alice."]
    # Two views since the failed login, this one after: regenerate() kept the data.
    assert page.html.find(id="counter").get_text() == "You have viewed this page 3 times."
    again = browser.get("/")
    assert flashes(again) == []
    assert again.html.find(id="user").get_text() == "Logged in as alice."


def test_login_refuses_a_wrong_password(load_example: ExampleLoader) -> None:
    """A wrong password leaves the visitor logged out with a message saying so."""
    browser = client(load_example("login"))
    page = login(browser, "alice", "guess")
    assert page.html.find(id="user") is None
    assert flashes(page) == ["Wrong user name or password."]
    assert login(browser, "mallory", "wonderland").html.find(id="user") is None


def test_logout_destroys_then_flashes(load_example: ExampleLoader) -> None:
    """Logout ends the session, says "logged out" once, and the old cookie opens nothing."""
    example = load_example("login")
    browser = client(example)
    page = login(browser, "bob", "builder")
    logged_in_cookie = browser.cookies["wsgisession"]
    page = page.forms["logout"].submit().follow()
    assert flashes(page) == ["logged out"]
    assert page.html.find(id="user") is None
    assert page.html.find(id="counter").get_text() == "You have viewed this page once."
    assert browser.cookies["wsgisession"] != logged_in_cookie
    assert flashes(browser.get("/")) == []
    thief = client(example)
    thief.set_cookie("wsgisession", logged_in_cookie)
    assert thief.get("/").html.find(id="user") is None


def test_forms_need_the_sessions_csrf_token(load_example: ExampleLoader) -> None:
    """A POST without the token, or with another session's, is a 403 that changes nothing."""
    example = load_example("login")
    victim, attacker = client(example), client(example)
    login(victim, "alice", "wonderland")
    foreign = csrf(attacker.get("/"))
    for token in (None, foreign, ""):
        fields = {"note": "pwned"} if token is None else {"note": "pwned", "csrf_token": token}
        refused = victim.post("/note", fields, status=403)
        assert "reload the page" in refused.text
    assert victim.get("/").html.find(id="note") is None
    forged_login = attacker.post(
        "/login", {"username": "alice", "password": "wonderland"}, status=403
    )
    assert "another site" in forged_login.text


def test_note_is_saved_and_escaped(load_example: ExampleLoader) -> None:
    """The note form keeps its text, shown as text (not markup), cut to the limit."""
    example = load_example("login")
    browser = client(example)
    page = login(browser, "alice", "wonderland")
    form = page.forms["note-form"]
    form["note"] = "<script>alert(1)</script>" + "x" * 500
    page = form.submit().follow()
    assert flashes(page) == ["note saved"]
    note = page.html.find(id="note")
    assert note.find("script") is None
    assert note.get_text().startswith("Your note: <script>alert(1)</script>xxx")
    assert len(note.get_text()) == len("Your note: ") + example.NOTE_LIMIT


def test_login_example_answers_bad_requests_without_a_500(load_example: ExampleLoader) -> None:
    """Wrong methods, unknown paths and undecodable form bodies get 4xx or a page, never a 500."""
    browser = client(load_example("login"))
    assert browser.get("/login", status=405).headers["Allow"] == "POST"
    browser.get("/nowhere", status=404)
    token = csrf(login(browser, "alice", "wonderland"))
    body = b"csrf_token=" + token.encode() + b"&note=%ff%fe"
    response = browser.post("/note", body, content_type="application/x-www-form-urlencoded")
    assert response.status_int == 303
    assert browser.get("/").status_int == 200
    # A file upload where a text field belongs is treated as an empty field.
    token = csrf(browser.get("/"))
    upload = browser.post(
        "/note", {"csrf_token": token}, upload_files=[("note", "note.txt", b"file body")]
    )
    assert upload.status_int == 303
    assert (
        browser.post(
            "/login", upload_files=[("csrf_token", "t.txt", token.encode())], status=403
        ).status_int
        == 403
    )


def test_login_cookie_is_signed_httponly_lax(load_example: ExampleLoader) -> None:
    """The example's cookie is HttpOnly, SameSite=Lax and signed with the newest env key."""
    browser = client(load_example("login"))
    page = browser.get("/")
    form = page.forms["login"]
    form["username"], form["password"] = "alice", "wonderland"
    response = form.submit()
    attributes = cookie_attributes(response)
    assert "httponly" in attributes and attributes["samesite"] == "Lax"
    value = session_cookie(response)
    assert value is not None and len(value.split(".")) == 2


def _stored_sessions(tmp_path: Path) -> int:
    """How many live sessions the example's SQLite file holds (see load_example)."""
    with SqliteStore(tmp_path / "sessions.db") as store:
        return store.stats(time.time()).sessions


def test_login_example_stores_nothing_for_anonymous_get_and_head(
    load_example: ExampleLoader, tmp_path: Path
) -> None:
    """Cookie-less GETs and HEADs (crawlers, monitors) create no session and no session cookie."""
    example = load_example("login")
    for _ in range(10):
        for method in ("get", "head"):
            response = getattr(client(example), method)("/")
            assert session_cookie(response) is None
    browser = client(example)
    for _ in range(5):
        browser.get("/")  # a visitor who keeps the login cookie but never logs in
    assert _stored_sessions(tmp_path) == 0
    assert login(browser, "bob", "builder").html.find(id="user") is not None
    assert _stored_sessions(tmp_path) == 1


def test_login_example_gives_anonymous_sessions_a_short_life(load_example: ExampleLoader) -> None:
    """A session bound to no login (a failed login, a logout) lives ANONYMOUS_MAX_AGE only."""
    example = load_example("login")
    browser = client(example)
    form = browser.get("/").forms["login"]
    form["username"], form["password"] = "alice", "guess"
    failed = form.submit()
    assert cookie_attributes(failed)["max-age"] == str(example.ANONYMOUS_MAX_AGE)
    form = failed.follow().forms["login"]
    form["username"], form["password"] = "alice", "wonderland"
    logged_in = form.submit()
    assert cookie_attributes(logged_in)["max-age"] == str(example.MAX_AGE)
    logged_out = logged_in.follow().forms["logout"].submit()
    assert cookie_attributes(logged_out)["max-age"] == str(example.ANONYMOUS_MAX_AGE)


def test_login_form_needs_this_browsers_pre_session_token(load_example: ExampleLoader) -> None:
    """Login CSRF: the login form's token only passes with the cookie it was made with."""
    example = load_example("login")
    attacker, victim = client(example), client(example)
    theirs = csrf(attacker.get("/"))
    fields = {"username": "mallory", "password": "x", "csrf_token": theirs}
    victim.post("/login", fields, status=403)  # the victim has no login cookie
    mine = csrf(victim.get("/"))
    assert mine != theirs
    victim.post("/login", fields, status=403)  # the victim's cookie holds another token
    fields["csrf_token"] = mine
    assert victim.post("/login", fields).status_int == 303


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "no-such-charset"])
def test_login_example_refuses_forms_in_another_charset(
    load_example: ExampleLoader, charset: str
) -> None:
    """A form post declared in a charset WebOb does not read is a 403, never a 500."""
    browser = client(load_example("login"))
    token = csrf(browser.get("/"))
    content_type = f"application/x-www-form-urlencoded; charset={charset}"
    body = f"csrf_token={token}&username=alice&password=wonderland".encode()
    browser.request("/login", method="POST", body=body, content_type=content_type, status=403)
    token = csrf(login(browser, "alice", "wonderland"))
    body = f"csrf_token={token}&note=hi".encode()
    browser.request("/note", method="POST", body=body, content_type=content_type, status=403)
    # The token in the header passes; the unreadable form then counts as empty.
    headers = {"X-CSRF-Token": token}
    browser.request(
        "/note", method="POST", body=body, content_type=content_type, headers=headers, status=303
    )


def browser_named(module: ModuleType, agent: str) -> webtest.TestApp:
    """A client of the example that says it is the browser *agent* (its User-Agent)."""
    return webtest.TestApp(module.app, extra_environ={"HTTP_USER_AGENT": agent})


def listed_sessions(browser: webtest.TestApp) -> list[tuple[str, bool]]:
    """The sessions page as (text, is this browser) for each session it lists."""
    page = browser.get("/sessions")
    assert page.status_int == 200, page.status
    return [
        (item.get_text(" ", strip=True), "current" in item["class"])
        for item in page.html.select("#sessions li.session")
    ]


def test_sessions_page_lists_each_login_and_marks_this_one(load_example: ExampleLoader) -> None:
    """Two logins of one user: both listed with their browsers, this browser's one marked."""
    example = load_example("login")
    laptop = browser_named(example, "Laptop Firefox")
    phone = browser_named(example, "Phone <Safari>")
    login(laptop, "alice", "wonderland")
    login(phone, "alice", "wonderland")
    login(browser_named(example, "Bob's PC"), "bob", "builder")  # another user: not listed
    shown = listed_sessions(laptop)
    assert len(shown) == 2
    assert [current for _, current in shown] == [True, False]  # this browser first
    assert shown[0][0].startswith("Laptop Firefox") and "(this browser)" in shown[0][0]
    assert shown[1][0].startswith("Phone <Safari>")  # the agent shown as text
    phone_view = listed_sessions(phone)
    assert phone_view[0][0].startswith("Phone <Safari>") and phone_view[0][1]


def test_revoking_the_other_session_logs_it_out(load_example: ExampleLoader) -> None:
    """ "Log out this session" ends the other login: its cookie is anonymous on the next request."""
    example = load_example("login")
    laptop, phone = browser_named(example, "Laptop"), browser_named(example, "Phone")
    login(laptop, "alice", "wonderland")
    login(phone, "alice", "wonderland")
    phone_cookie = phone.cookies["wsgisession"]
    page = laptop.get("/sessions")
    page = page.forms[0].submit().follow()  # the one revoke form: the phone's session
    assert flashes(page) == ["That session is logged out."]
    assert [current for _, current in listed_sessions(laptop)] == [True]
    assert phone.get("/").html.find(id="user") is None  # the login form again
    assert phone.get("/sessions").status_int == 303
    thief = client(example)
    thief.set_cookie("wsgisession", phone_cookie)
    assert thief.get("/").html.find(id="user") is None
    assert laptop.get("/").html.find(id="user").get_text() == "Logged in as alice."


def test_log_out_all_other_sessions(load_example: ExampleLoader) -> None:
    """ "Log out all other sessions" ends every other login of the user, not other users'."""
    example = load_example("login")
    browsers = [browser_named(example, f"browser {n}") for n in range(3)]
    for browser in browsers:
        login(browser, "alice", "wonderland")
    bob = browser_named(example, "bob's")
    login(bob, "bob", "builder")
    page = browsers[0].get("/sessions").forms["revoke-others"].submit().follow()
    assert flashes(page) == ["Logged out 2 other sessions."]
    assert [current for _, current in listed_sessions(browsers[0])] == [True]
    assert page.html.find(id="revoke-others") is None
    for browser in browsers[1:]:
        assert browser.get("/").html.find(id="user") is None
    assert bob.get("/").html.find(id="user") is not None


def test_sessions_forms_need_the_sessions_csrf_token(load_example: ExampleLoader) -> None:
    """A revoke without this session's token (forged, another's, none): a 403, nothing ended."""
    example = load_example("login")
    victim, other, attacker = client(example), client(example), client(example)
    login(victim, "alice", "wonderland")
    login(other, "alice", "wonderland")
    handle = victim.get("/sessions").forms[0]["handle"].value
    login(attacker, "bob", "builder")
    foreign = csrf(attacker.get("/"))
    for token in (None, foreign, "", "x" * 43):
        fields = {"handle": handle} if token is None else {"handle": handle, "csrf_token": token}
        refused = victim.post("/sessions/revoke", fields, status=403)
        assert "another site" in refused.text
        extra = {} if token is None else {"csrf_token": token}
        victim.post("/sessions/revoke-others", extra, status=403)
    assert other.get("/").html.find(id="user") is not None
    assert len(listed_sessions(victim)) == 2


def test_a_handle_is_not_a_cookie_and_ends_only_its_users_sessions(
    load_example: ExampleLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handle on the page opens no session as a cookie, and another user cannot revoke it."""
    monkeypatch.delenv("WSGISESSION_SECRET")  # unsigned cookies: a bare id is a valid cookie
    example = load_example("login")
    alice, alice_phone, bob = client(example), client(example), client(example)
    login(alice, "alice", "wonderland")
    login(alice_phone, "alice", "wonderland")
    handle = alice.get("/sessions").forms[0]["handle"].value
    thief = client(example)
    thief.set_cookie("wsgisession", handle)
    assert thief.get("/").html.find(id="user") is None
    login(bob, "bob", "builder")
    token = csrf(bob.get("/"))
    page = bob.post("/sessions/revoke", {"handle": handle, "csrf_token": token}).follow()
    assert flashes(page) == ["That session had already ended."]
    assert alice_phone.get("/").html.find(id="user") is not None


def test_sessions_page_for_a_visitor_without_a_login_stores_nothing(
    load_example: ExampleLoader, tmp_path: Path
) -> None:
    """GET and HEAD of /sessions without a login redirect to the login form, creating nothing."""
    example = load_example("login")
    for method in ("get", "head"):
        response = getattr(client(example), method)("/sessions", status=303)
        assert session_cookie(response) is None
    assert _stored_sessions(tmp_path) == 0


def test_login_example_keeps_the_user_agent_of_logins_only(
    load_example: ExampleLoader, tmp_path: Path
) -> None:
    """The describe hook's user agent is kept for a logged-in session, not for anonymous ones."""
    example = load_example("login")
    failed = browser_named(example, "Tester/1.0 " + "x" * 500)
    login(failed, "alice", "guess")  # an anonymous session: nothing about the browser
    with SqliteStore(tmp_path / "sessions.db") as store:
        assert wsgisession.user_sessions(store, "alice") == []
    login(failed, "alice", "wonderland")
    with SqliteStore(tmp_path / "sessions.db") as store:
        (info,) = wsgisession.user_sessions(store, "alice")
    assert info.info == {"user_agent": ("Tester/1.0 " + "x" * 500)[: example.AGENT_LIMIT]}


# flask_app.py --------------------------------------------------------------------------------


def test_flask_example(load_example: ExampleLoader) -> None:
    """The Flask example counts visits, keeps a name with a one-time flash, and forgets."""
    pytest.importorskip("flask")
    browser = client(load_example("flask_app"))
    browser.get("/")
    page = browser.get("/")
    assert page.html.find(id="visits").get_text() == "Visit number 2."
    form = page.forms[0]
    form["name"] = "<b>Ada</b>"
    page = form.submit().follow()
    assert page.html.find(id="name").get_text() == "Hello, <b>Ada</b>!"
    assert flashes(page) == ["Saved your name, <b>Ada</b>."]
    assert flashes(browser.get("/")) == []
    page = browser.get("/").forms[1].submit().follow()
    assert page.html.find(id="visits").get_text() == "Visit number 1."
    assert page.html.find(id="name").get_text() == "Who are you?"


def test_flask_example_refuses_posts_without_the_token(load_example: ExampleLoader) -> None:
    """The Flask example's forms are CSRF-checked before any view runs."""
    pytest.importorskip("flask")
    browser = client(load_example("flask_app"))
    browser.get("/")
    browser.post("/name", {"name": "eve"}, status=403)
    assert browser.get("/").html.find(id="name").get_text() == "Who are you?"


# gunicorn.conf.py ------------------------------------------------------------------------------


def test_gunicorn_config_serves_the_counter_from_one_store(tmp_path: Path) -> None:
    """Under the example config, 2 workers share the SQLite store, and the proxy's HTTPS counts."""
    env = {"WSGISESSION_STORE": f"sqlite:///{tmp_path}/sessions.db", "WSGISESSION_SECRET": "k"}
    with serve("counter:app", env, tmp_path, workers=2) as server:
        visitor = requests.Session()
        answers = [visitor.get(server.url + "/", timeout=10).text for _ in range(8)]
        assert answers[-1] == "Visited page 8 times\n"
        # From a proxy on 127.0.0.1, gunicorn trusts X-Forwarded-Proto: the cookie is Secure.
        behind_proxy = requests.get(
            server.url + "/", headers={"X-Forwarded-Proto": "https"}, timeout=10
        )
        assert "secure" in behind_proxy.headers["Set-Cookie"].lower()
        assert (
            "secure"
            not in visitor.get(server.url + "/", timeout=10).headers.get("Set-Cookie", "").lower()
        )
    assert "WSGISESSION_SECRET is not set" not in server.log()


def test_gunicorn_config_refuses_a_memory_store_with_several_workers(tmp_path: Path) -> None:
    """memory:// with two workers stops gunicorn at start with a message saying what to use."""
    command = gunicorn_command("counter:app", "-w", "2", "--bind", "127.0.0.1:0")
    env = {**os.environ, "WSGISESSION_STORE": "memory://"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "keeps sessions inside each of the 2 worker processes" in done.stderr
    assert "sqlite:////path/sessions.db" in done.stderr


def test_gunicorn_config_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config preloads the app, binds to loopback and takes workers from WEB_CONCURRENCY."""
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.delenv("WSGISESSION_STORE", raising=False)
    code = (
        "import runpy, json, os, sys; s = runpy.run_path(sys.argv[1]); "
        "print(json.dumps([s['workers'], s['preload_app'], s['bind'], "
        "os.environ['WSGISESSION_STORE']]))"
    )
    config = str(EXAMPLES / "gunicorn.conf.py")
    done = subprocess.run(
        [sys.executable, "-c", code, config], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == '[3, true, "127.0.0.1:8000", "sqlite:///sessions.db"]'
