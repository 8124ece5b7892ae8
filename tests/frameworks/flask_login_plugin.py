"""A pytest plugin that makes wsgisession the session of every Flask app in the run.

It lets Flask-Login's own test suite, which builds a fresh ``Flask(__name__)`` in each test,
run on wsgisession unchanged: ``python -m pytest -p tests.frameworks.flask_login_plugin``.
``WSGISESSION_SUITE_STORE`` picks the store by URL (``memory://`` by default).
"""

from __future__ import annotations

import os
import warnings

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Make wsgisession's SessionInterface the default of flask.Flask before any test runs."""
    import flask

    with warnings.catch_warnings():
        # WebOb imports cgi; Flask-Login's suite turns every warning into an error.
        warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
        from wsgisession.integrations.flask import SessionInterface

    class Counting(SessionInterface):
        """Counts the sessions it opens, so the runner can tell the suite really used it."""

        opened = 0

        def open_session(self, app: flask.Flask, request: flask.Request) -> object:
            Counting.opened += 1
            return super().open_session(app, request)

    url = os.environ.get("WSGISESSION_SUITE_STORE", "memory://")
    flask.Flask.session_interface = Counting(url)
    config.stash[_COUNTING] = Counting


_COUNTING = pytest.StashKey[type]()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Write how many sessions wsgisession opened to ``WSGISESSION_SUITE_OPENED`` (a path)."""
    target = os.environ.get("WSGISESSION_SUITE_OPENED")
    counting = config.stash.get(_COUNTING, None)
    if target and counting is not None:
        with open(target, "w", encoding="utf-8") as file:
            file.write(str(counting.opened))
