"""CSRF tokens: Session.csrf_token, CSRFMiddleware and check_csrf, end to end through webtest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
import webtest
from webob import Request, Response

from wsgisession import (
    CookieStore,
    CSRFMiddleware,
    MemoryStore,
    SessionMiddleware,
    Store,
    check_csrf,
)

#: Every call that reached the protected application, as (method, path).
REACHED: list[tuple[str, str]] = []


def protected(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """/form shows the token, /login regenerates, /raw echoes wsgi.input, others echo the form."""
    REACHED.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
    session = environ["wsgisession"]
    path = environ["PATH_INFO"]
    if path == "/form":
        response = Response(session.csrf_token, charset="utf-8")
    elif path == "/login":
        session.regenerate()
        session["user"] = "alice"
        response = Response(session.csrf_token, charset="utf-8")
    elif path == "/raw":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        response = Response(body=environ["wsgi.input"].read(length))
    else:
        request = Request(environ)
        fields = {
            key: (value if isinstance(value, str) else value.value.decode())
            for key, value in request.POST.items()
        }
        response = Response(json.dumps(fields), content_type="application/json", charset="utf-8")
    return response(environ, start_response)


@pytest.fixture(params=["memory", "cookie"])
def session_store(request: pytest.FixtureRequest) -> Store:
    """A server-side and a client-side store: the token works the same on both."""
    return MemoryStore() if request.param == "memory" else CookieStore()


@pytest.fixture
def client(session_store: Store) -> webtest.TestApp:
    REACHED.clear()
    app = SessionMiddleware(CSRFMiddleware(protected), store=session_store, secret_keys="k")
    return webtest.TestApp(app)


def test_safe_methods_need_no_token(client: webtest.TestApp) -> None:
    """GET, HEAD and OPTIONS pass without any token."""
    client.get("/form")
    client.head("/anything")
    client.options("/anything")
    assert [method for method, _ in REACHED] == ["GET", "HEAD", "OPTIONS"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unsafe_method_without_token_is_403(client: webtest.TestApp, method: str) -> None:
    """POST, PUT, PATCH and DELETE without the token get a short 403 and never reach the app."""
    client.get("/form")
    REACHED.clear()
    response = getattr(client, method)("/change", status=403)
    assert "CSRF token" in response.text
    assert len(response.body) < 200
    assert response.headers["Cache-Control"] == "no-store"
    assert REACHED == []


def test_form_field_token_passes_and_body_stays_readable(client: webtest.TestApp) -> None:
    """A form post with the csrf_token field reaches the app, which still reads every field."""
    token = client.get("/form").text
    response = client.post("/change", {"csrf_token": token, "name": "Ann", "city": "Oslo"})
    assert response.json == {"csrf_token": token, "name": "Ann", "city": "Oslo"}


def test_raw_wsgi_app_reads_the_whole_body(client: webtest.TestApp) -> None:
    """An app that reads wsgi.input itself gets the whole body after the check read the form."""
    token = client.get("/form").text
    body = f"csrf_token={token}&note=" + "z" * 20000
    response = client.post("/raw", body, content_type="application/x-www-form-urlencoded")
    assert response.text == body


def test_multipart_form_with_upload(client: webtest.TestApp) -> None:
    """A multipart form carrying the token and a file upload passes, the file intact."""
    token = client.get("/form").text
    response = client.post(
        "/change",
        {"csrf_token": token},
        upload_files=[("doc", "a.txt", b"file body")],
    )
    assert response.json == {"csrf_token": token, "doc": "file body"}


def test_header_token_passes_and_json_body_untouched(client: webtest.TestApp) -> None:
    """X-CSRF-Token passes a JSON request; its body reaches the app unread."""
    token = client.get("/form").text
    for method in ("post_json", "put_json", "patch_json", "delete_json"):
        response = getattr(client, method)("/raw", {"a": 1}, headers={"X-CSRF-Token": token})
        assert json.loads(response.body) == {"a": 1}


def test_wrong_token_is_403(client: webtest.TestApp) -> None:
    """A token that is not this session's, in the field or the header, is refused."""
    client.get("/form")
    client.post("/change", {"csrf_token": "x" * 43}, status=403)
    client.post("/change", {"a": "1"}, headers={"X-CSRF-Token": "nope"}, status=403)
    client.post("/change", {"csrf_token": ""}, status=403)


def test_token_of_another_session_is_403(client: webtest.TestApp) -> None:
    """A valid token of someone else's session does not pass in mine."""
    theirs = webtest.TestApp(client.app).get("/form").text
    client.get("/form")
    client.post("/change", {"csrf_token": theirs}, status=403)


def test_no_session_no_pass(client: webtest.TestApp) -> None:
    """Without a session (so without a token), an unsafe request is refused."""
    client.post("/change", {"csrf_token": "anything"}, status=403)
    client.post("/change", {"csrf_token": ""}, status=403)


def test_login_rotates_the_token(client: webtest.TestApp) -> None:
    """After regenerate() (login) the old token is refused and the new one passes."""
    old = client.get("/form").text
    new = client.get("/login").text
    assert new != old
    client.post("/change", {"csrf_token": old}, status=403)
    client.post("/change", {"csrf_token": new})


def test_malformed_multipart_is_403_not_500(client: webtest.TestApp) -> None:
    """A broken multipart body counts as no token: a 403, never a 500."""
    client.get("/form")
    client.post(
        "/change",
        b"--broken\r\nnot a part",
        content_type="multipart/form-data",
        status=403,
    )


def test_exempt_requests_skip_the_check() -> None:
    """An exempt predicate lets chosen requests through without a token."""
    REACHED.clear()
    app = SessionMiddleware(
        CSRFMiddleware(protected, exempt=lambda environ: environ["PATH_INFO"] == "/hook"),
    )
    client = webtest.TestApp(app)
    client.post("/hook", {"a": "1"})
    client.post("/other", {"a": "1"}, status=403)
    assert REACHED == [("POST", "/hook")]


def test_custom_field_and_header_names() -> None:
    """field_name and header_name choose where the token is looked for."""
    app = SessionMiddleware(CSRFMiddleware(protected, field_name="_token", header_name="X-Token"))
    client = webtest.TestApp(app)
    token = client.get("/form").text
    client.post("/change", {"_token": token})
    client.post("/change", {}, headers={"X-Token": token})
    client.post("/change", {"csrf_token": token}, status=403)


def test_check_csrf_helper_in_a_view() -> None:
    """check_csrf(environ) lets a view or framework hook decide per route."""

    def view(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ["wsgisession"]
        if environ["PATH_INFO"] == "/form":
            body = session.csrf_token
        else:
            body = "ok" if check_csrf(environ) else "refused"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    client = webtest.TestApp(SessionMiddleware(view))
    token = client.get("/form").text
    assert client.post("/x", {"csrf_token": token}).text == "ok"
    assert client.post("/x", {"csrf_token": "bad"}).text == "refused"
    assert client.get("/x").text == "ok"
