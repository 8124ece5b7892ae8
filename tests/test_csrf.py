"""CSRF: Session.csrf_token, CSRFMiddleware and check_csrf (token and origin), through webtest."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import pytest
import webtest
from webob import Request, Response

from wsgisession import (
    ConfigurationError,
    CookieStore,
    CSRFMiddleware,
    MemoryStore,
    SessionMiddleware,
    SessionNotInstalledError,
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


# Bad input: 403, never 500 (issue 13, item 3) ------------------------------------------------

#: Form bodies declared in a charset other than UTF-8, which WebOb refuses to parse.
FOREIGN_CHARSETS = [
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/x-www-form-urlencoded; charset=no-such-charset",
    "multipart/form-data; boundary=b; charset=latin-1",
]


def _form_body(content_type: str, token: str) -> bytes:
    if content_type.startswith("multipart/"):
        return (
            b'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            + token.encode()
            + b"\r\n--b--\r\n"
        )
    return f"csrf_token={token}".encode()


@pytest.mark.parametrize("content_type", FOREIGN_CHARSETS)
def test_form_in_another_charset_is_403_not_500(client: webtest.TestApp, content_type: str) -> None:
    """A form declared in latin-1, utf-16 or a bogus charset counts as no token: a 403."""
    token = client.get("/form").text
    REACHED.clear()
    body = _form_body(content_type, token)
    response = client.request(
        "/change", method="POST", body=body, content_type=content_type, status=403
    )
    assert "CSRF token" in response.text
    assert REACHED == []


@pytest.mark.parametrize("content_type", FOREIGN_CHARSETS)
def test_check_csrf_in_another_charset_is_false_not_an_error(content_type: str) -> None:
    """check_csrf() answers False for a form it cannot read, instead of raising."""

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
    body = _form_body(content_type, token)
    response = client.request("/x", method="POST", body=body, content_type=content_type)
    assert response.text == "refused"
    utf8 = content_type.split(";")[0] + "; boundary=b"  # the same form in UTF-8 passes
    response = client.request("/x", method="POST", body=body, content_type=utf8)
    assert response.text == "ok"


def test_token_with_a_lone_surrogate_is_refused(client: webtest.TestApp) -> None:
    """check_csrf_token("\\ud800") is False, and such a header token is a 403, not a 500."""
    seen: dict[str, bool] = {}

    def view(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ["wsgisession"]
        session.csrf_token  # noqa: B018 - make the token
        seen["surrogate"] = session.check_csrf_token("\ud800")
        seen["pair"] = session.check_csrf_token(session.csrf_token + "\udc00")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    webtest.TestApp(SessionMiddleware(view)).get("/")
    assert seen == {"surrogate": False, "pair": False}
    client.get("/form")
    client.post("/change", {"a": "1"}, headers={"X-CSRF-Token": "\ud800"}, status=403)


# The origin check (issue 13, item 12) ----------------------------------------------------------

SITE = "https://example.com"


@pytest.fixture
def site() -> webtest.TestApp:
    """A client of an HTTPS site at example.com, with one trusted other origin."""
    REACHED.clear()
    app = SessionMiddleware(
        CSRFMiddleware(protected, trusted_origins=["https://admin.example.com:8443"]),
        secret_keys="k",
    )
    return webtest.TestApp(app)


def _post(
    client: webtest.TestApp, headers: dict[str, str], status: int = 200, url: str = SITE
) -> webtest.TestResponse:
    """POST the session's token to /change with *headers*, expecting *status*."""
    token = client.get(url + "/form").text
    REACHED.clear()
    return client.post(url + "/change", {"csrf_token": token}, headers=headers, status=status)


def test_same_origin_and_trusted_origins_pass(site: webtest.TestApp) -> None:
    """Origin of this host, or of a trusted origin (any spelling of it), passes with the token."""
    for origin in (SITE, "https://EXAMPLE.com:443", "https://admin.example.com:8443"):
        _post(site, {"Origin": origin})
        assert REACHED == [("POST", "/change")], origin


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://example.com",
        "https://example.com:8443",
        "https://admin.example.com",
        "https://example.com.evil.example",
    ],
)
def test_foreign_origin_is_403_and_logged_with_what_to_trust(
    site: webtest.TestApp, origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A cross-origin post is refused even with the right token; the log says how to trust it."""
    with caplog.at_level(logging.WARNING, logger="wsgisession.csrf"):
        response = _post(site, {"Origin": origin}, status=403)
    assert "another site" in response.text and "CSRF token" not in response.text
    assert REACHED == []
    [record] = caplog.records
    message = record.getMessage()
    assert f"Origin {origin.lower()}" in message and SITE in message
    assert f"CSRFMiddleware(app, trusted_origins=[{origin.lower()!r}])" in message


def test_https_origin_of_this_host_passes_behind_a_tls_proxy() -> None:
    """This host's HTTPS page posting to an app that sees plain HTTP (a TLS proxy) passes."""
    client = webtest.TestApp(SessionMiddleware(CSRFMiddleware(protected)))
    _post(client, {"Origin": "https://example.com"}, url="http://example.com")
    _post(client, {"Origin": "https://example.com:8443"}, status=403, url="http://example.com")


def test_http_page_posting_to_https_is_refused_and_explained(
    site: webtest.TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    """The plain-HTTP page of this HTTPS site may not post: the log says why and what to do."""
    with caplog.at_level(logging.WARNING, logger="wsgisession.csrf"):
        _post(site, {"Origin": "http://example.com"}, status=403)
    assert "anyone on the network can alter" in caplog.text
    assert "serve the form over HTTPS" in caplog.text


def test_origin_null_is_refused(site: webtest.TestApp, caplog: pytest.LogCaptureFixture) -> None:
    """Origin: null (a sandboxed frame, a file: page) is refused, and the log says why."""
    with caplog.at_level(logging.WARNING, logger="wsgisession.csrf"):
        _post(site, {"Origin": "null"}, status=403)
    assert "'null'" in caplog.text and "cannot be trusted" in caplog.text


def test_unparsable_origin_is_refused(site: webtest.TestApp) -> None:
    """An Origin that is no http(s) origin is refused, not a 500."""
    for origin in ("chrome-extension://abc", "https://example.com:99999", "garbage", ""):
        _post(site, {"Origin": origin}, status=403)


def test_https_without_origin_checks_the_referer(
    site: webtest.TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    """Over HTTPS with no Origin, the Referer must be this site or a trusted origin."""
    _post(site, {"Referer": SITE + "/form?x=1"})
    _post(site, {"Referer": "https://admin.example.com:8443/page"})
    with caplog.at_level(logging.WARNING, logger="wsgisession.csrf"):
        _post(site, {"Referer": "https://evil.example/page"}, status=403)
        _post(site, {"Referer": "http://example.com/form"}, status=403)
        _post(site, {}, status=403)
    messages = [record.getMessage() for record in caplog.records]
    assert "Referer https://evil.example" in messages[0]
    assert "trusted_origins=['https://evil.example']" in messages[0]
    assert "neither Origin nor Referer" in messages[2] and f"Origin: {SITE}" in messages[2]


def test_plain_http_without_origin_leaves_it_to_the_token(client: webtest.TestApp) -> None:
    """Over plain HTTP a request with no Origin (an old browser, a script) needs the token only."""
    token = client.get("/form").text
    client.post("/change", {"csrf_token": token})
    client.post("/change", {"csrf_token": token}, headers={"Referer": "http://evil.example/"})


def test_safe_methods_skip_the_origin_check(site: webtest.TestApp) -> None:
    """A GET from another site's link is not a change: it passes."""
    site.get(SITE + "/form", headers={"Origin": "https://evil.example"})
    assert REACHED == [("GET", "/form")]


def test_check_csrf_checks_the_origin_too(caplog: pytest.LogCaptureFixture) -> None:
    """check_csrf() refuses a foreign origin, logs the advice for itself, and takes trust."""
    trusted: list[str] = []

    def view(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ["wsgisession"]
        if environ["PATH_INFO"] == "/form":
            body = session.csrf_token
        else:
            body = "ok" if check_csrf(environ, trusted_origins=trusted) else "refused"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    client = webtest.TestApp(SessionMiddleware(view))
    token = client.get(SITE + "/form").text
    evil = {"Origin": "https://evil.example"}
    with caplog.at_level(logging.WARNING, logger="wsgisession.csrf"):
        assert client.post(SITE + "/x", {"csrf_token": token}, headers=evil).text == "refused"
    assert "check_csrf(environ, trusted_origins=['https://evil.example'])" in caplog.text
    trusted.append("https://evil.example")
    assert client.post(SITE + "/x", {"csrf_token": token}, headers=evil).text == "ok"


@pytest.mark.parametrize(
    "origins",
    [
        ["example.com"],
        ["https://example.com/app"],
        ["https://*.example.com"],
        ["ftp://x.org"],
        ["https://user@example.com"],
        ["https://example.com?a=1"],
        [42],
        ["null"],
        "*",
    ],
)
def test_bad_trusted_origins_fail_at_construction(origins: Any) -> None:
    """trusted_origins holding no plain scheme://host[:port] is refused when the app is built."""
    with pytest.raises(ConfigurationError) as raised:
        CSRFMiddleware(protected, trusted_origins=origins)
    message = str(raised.value)
    assert "trusted_origins" in message
    assert "'https://example.com'" in message or "drop it" in message


def test_trusted_origins_are_normalized() -> None:
    """A str counts as one origin; case, default ports and a trailing slash do not matter."""
    middleware = CSRFMiddleware(protected, trusted_origins="HTTPS://Admin.Example.com:443/")
    assert middleware.trusted_origins == frozenset({"https://admin.example.com"})
    middleware = CSRFMiddleware(protected, trusted_origins=["http://[::1]:8000"])
    assert middleware.trusted_origins == frozenset({"http://[::1]:8000"})


# The order mistake (issue 19, item 5) ----------------------------------------------------------


def test_csrf_outside_session_middleware_fails_at_construction() -> None:
    """CSRFMiddleware(SessionMiddleware(app)) is refused, saying which way round they go."""
    with pytest.raises(ConfigurationError) as raised:
        CSRFMiddleware(SessionMiddleware(protected))
    assert "put CSRFMiddleware inside SessionMiddleware" in str(raised.value)
    assert "SessionMiddleware(CSRFMiddleware(app), ...)" in str(raised.value)


def test_csrf_outside_session_middleware_fails_on_the_first_request() -> None:
    """With something in between, the first request (a GET too) says to swap them."""

    def between(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return SessionMiddleware(protected)(environ, start_response)

    client = webtest.TestApp(CSRFMiddleware(between))
    with pytest.raises(SessionNotInstalledError) as raised:
        client.get("/form")
    message = str(raised.value)
    assert "CSRFMiddleware found no session" in message
    assert "SessionMiddleware(CSRFMiddleware(app), ...)" in message


def test_check_csrf_without_a_session_says_where_to_call_it() -> None:
    """check_csrf() outside SessionMiddleware says to call it inside, not just "wrap the app"."""

    def view(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        check_csrf(environ)
        start_response("200 OK", [])
        return [b""]

    with pytest.raises(SessionNotInstalledError, match=r"check_csrf\(\) found no session"):
        webtest.TestApp(view).post("/x", {"a": "1"})
