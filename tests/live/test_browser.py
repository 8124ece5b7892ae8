"""A real browser: headless Chromium against examples/login.py under gunicorn with 2 workers.

It uses Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``) through selenium, with the driver path given so selenium never tries to
download one. Without them the tests skip with the install command, except under ``CI=true``,
where they fail (``.ci/run`` installs them first).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import Server, serve

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("WSGISESSION_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WSGISESSION_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,800",
]


def missing_browser() -> str | None:
    """Say what is missing to drive Chromium, or None when everything is there."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return (
                f"{path} not found: install Debian's browser with "
                "'apt-get install -y chromium chromium-driver' "
                f"(the {package} package), or set WSGISESSION_CHROMIUM / WSGISESSION_CHROMEDRIVER"
            )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install --group test (make venv does)"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """examples/login.py under gunicorn with 2 workers sharing one SQLite file."""
    folder = tmp_path_factory.mktemp("browser-server")
    env = {
        "WSGISESSION_STORE": f"sqlite:///{folder}/sessions.db",
        "WSGISESSION_SECRET": "browser-test-key",
    }
    with serve("login:app", env, folder, workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile folder."""
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser test cannot run: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    service = Service(executable_path=CHROMEDRIVER, log_output=str(log))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Any, server: Server) -> Any:
    """The browser on the example's page, with no cookies from an earlier test."""
    chromium.get(server.url + "/")
    chromium.delete_all_cookies()
    chromium.get(server.url + "/")
    return chromium


def text(driver: Any, element_id: str) -> str | None:
    """The text of the element with *element_id*, or None when the page has none."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.ID, element_id)
    return str(found[0].text) if found else None


def flash_messages(driver: Any) -> list[str]:
    """The flash messages on the current page."""
    from selenium.webdriver.common.by import By

    return [str(item.text) for item in driver.find_elements(By.CSS_SELECTOR, ".flash")]


def submit(driver: Any, form_id: str, **fields: str) -> None:
    """Fill in a form's fields, press its button and wait for the page the redirect leads to."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    form = driver.find_element(By.ID, form_id)
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    # A mark on the old page's window: gone once the browser shows the next document. (Waiting
    # for the old <html> element to go stale races with chromedriver, which may answer that the
    # node "does not belong to the document" instead of "stale".)
    driver.execute_script("window.__wsgisessionOldPage = true")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script(
            "return !window.__wsgisessionOldPage && document.readyState === 'complete'"
        )
    )


def session_cookie(driver: Any) -> dict[str, Any]:
    """The session cookie as the browser keeps it."""
    cookie = driver.get_cookie("wsgisession")
    assert cookie is not None, f"no session cookie in {driver.get_cookies()}"
    return dict(cookie)


def test_counter_rises_across_reloads(browser: Any) -> None:
    """Each reload shows a counter one higher, whichever worker answers."""
    assert text(browser, "counter") is None  # no session, so no counter, before any form
    submit(browser, "login", username="alice", password="wonderland")
    seen = [text(browser, "counter")]
    for _ in range(4):
        browser.refresh()
        seen.append(text(browser, "counter"))
    assert seen == ["You have viewed this page once."] + [
        f"You have viewed this page {n} times." for n in range(2, 6)
    ]


def test_javascript_cannot_read_the_session_cookie(browser: Any) -> None:
    """document.cookie shows a script's own cookie but never the HttpOnly session cookie."""
    submit(browser, "login", username="alice", password="wonderland")
    cookie = session_cookie(browser)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    browser.execute_script("document.cookie = 'visible=yes; path=/'")
    seen_by_script = browser.execute_script("return document.cookie")
    assert "visible=yes" in seen_by_script
    assert "wsgisession" not in seen_by_script
    assert cookie["value"] not in seen_by_script


def test_login_and_logout(browser: Any) -> None:
    """Logging in shows the user under a new cookie; logging out ends the session."""
    assert browser.get_cookie("wsgisession") is None  # the anonymous page stores no session
    submit(browser, "login", username="alice", password="not-it")  # this one starts a session
    anonymous = session_cookie(browser)["value"]
    submit(browser, "login", username="alice", password="wonderland")
    assert text(browser, "user") == "Logged in as alice."
    logged_in = session_cookie(browser)["value"]
    assert logged_in != anonymous  # regenerate() at login

    browser.refresh()
    assert text(browser, "user") == "Logged in as alice."

    submit(browser, "logout")
    assert text(browser, "user") is None
    assert text(browser, "login") is not None
    assert session_cookie(browser)["value"] not in (anonymous, logged_in)

    # The logged-in cookie, put back by hand, opens nothing any more.
    browser.delete_all_cookies()
    browser.add_cookie({"name": "wsgisession", "value": logged_in, "path": "/"})
    browser.refresh()
    assert text(browser, "user") is None


def test_wrong_password_keeps_the_visitor_out(browser: Any) -> None:
    """A wrong password shows why and no user."""
    submit(browser, "login", username="alice", password="not-it")
    assert text(browser, "user") is None
    assert flash_messages(browser) == ["Wrong user name or password."]


def test_flash_message_shows_exactly_once(browser: Any) -> None:
    """A flash message is on the page after the redirect, and gone on the next reload."""
    submit(browser, "login", username="bob", password="builder")
    assert flash_messages(browser) == ["Welcome, bob."]
    submit(browser, "note-form", note="buy milk")
    assert flash_messages(browser) == ["note saved"]
    assert text(browser, "note") == "Your note: buy milk"
    browser.refresh()
    assert flash_messages(browser) == []
    assert text(browser, "note") == "Your note: buy milk"
    submit(browser, "logout")
    assert flash_messages(browser) == ["logged out"]
    browser.refresh()
    assert flash_messages(browser) == []
