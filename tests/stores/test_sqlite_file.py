"""SqliteStore and its file: a bad path fails at construction, a file deleted or replaced under
a running process is a logged 503 instead of writes that vanish at the next restart."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import webtest

from wsgisession import ConfigurationError, SessionMiddleware, SqliteStore, store_from_url

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Counts the visits of a session."""
    session = environ["wsgisession"]
    session["n"] = session.get("n", 0) + 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(session["n"]).encode()]


def test_missing_folder_fails_when_the_store_is_built(tmp_path: Path) -> None:
    """A path in a folder that does not exist is a ConfigurationError saying to create it."""
    with pytest.raises(ConfigurationError, match=r"does not exist; create it \(mkdir -p\)"):
        SqliteStore(tmp_path / "no-such-folder" / "sessions.db")
    with pytest.raises(ConfigurationError, match="does not exist"):
        store_from_url(f"sqlite:///{tmp_path}/no-such-folder/sessions.db")


def test_a_folder_that_is_a_file_fails_when_the_store_is_built(tmp_path: Path) -> None:
    """A path under a regular file is refused at once, not as a 503 on every request."""
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(ConfigurationError, match="does not exist"):
        SqliteStore(tmp_path / "plain-file" / "sessions.db")


def test_an_unwritable_place_fails_when_the_store_is_built() -> None:
    """A file that cannot be created (even by root: /sys) is refused, naming write access."""
    with pytest.raises(ConfigurationError, match="cannot be opened for writing"):
        SqliteStore("/sys/wsgisession-test.db")


def _served(path: Path) -> tuple[SqliteStore, webtest.TestApp]:
    store = SqliteStore(path)
    store.file_check_interval = 0.0  # check on every operation, so the test need not wait
    return store, webtest.TestApp(SessionMiddleware(app, store=store))


def test_deleted_file_is_a_logged_503_not_writes_into_a_ghost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """rm sessions.db under a running process: a 503 and an error log, then a fresh database."""
    path = tmp_path / "sessions.db"
    store, client = _served(path)
    with store:
        assert client.get("/").text == "1"
        assert client.get("/").text == "2"
        path.unlink()
        with caplog.at_level(logging.ERROR, logger="wsgisession"):
            client.get("/", status=503)
        assert "was deleted while this process had it open" in caplog.text
        assert client.get("/").text == "1"  # the session was in the deleted file
        assert path.exists()
        with sqlite3.connect(path) as check:
            assert check.execute(f"SELECT count(*) FROM {store.table}").fetchone() == (1,)


def test_replaced_file_is_a_logged_503_then_the_new_file_is_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database moved over the path (a restore) is noticed: a 503, then the new file serves."""
    path = tmp_path / "sessions.db"
    store, client = _served(path)
    restored = tmp_path / "restored.db"
    with store, SqliteStore(restored) as other:
        assert client.get("/").text == "1"
        other.create_schema()
        os.replace(restored, path)
        with caplog.at_level(logging.ERROR, logger="wsgisession"):
            client.get("/", status=503)
        assert "was replaced by another file" in caplog.text
        assert client.get("/").text == "1"
        assert client.get("/").text == "2"
