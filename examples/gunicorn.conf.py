"""gunicorn settings for an application that keeps its sessions with wsgisession.

Use it with any of the examples (run from the repository root)::

    WSGISESSION_STORE=sqlite:////var/lib/app/sessions.db \\
    WSGISESSION_SECRET="$(cat /etc/app/session-keys)" \\
        .venv/bin/gunicorn -c examples/gunicorn.conf.py --chdir examples login:app

The application reads the same environment as this file:

``WSGISESSION_STORE``
    where sessions live: ``sqlite:////absolute/path.db`` for one machine, ``redis://…`` or
    ``postgresql://…`` for several. ``sqlite:///sessions.db`` (next to the app) by default.
    ``memory://`` is refused with more than one worker: each worker process would keep its own
    sessions, and a visitor would lose theirs whenever another worker answered.
``WSGISESSION_SECRET``
    the cookie-signing keys, comma-separated, newest first. Optional for server-side stores,
    but with keys a forged cookie never reaches the store. To rotate, put the new key first
    and keep the old one until its cookies have expired.
``WEB_CONCURRENCY``
    the number of workers; twice the cores plus one by default.

Command-line options (``-w``, ``-b``, …) override what this file sets.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

# The application module reads these at import; set the defaults before it is imported.
os.environ.setdefault("WSGISESSION_STORE", "sqlite:///sessions.db")

#: Loopback only: put a TLS proxy (nginx, Caddy, a load balancer) in front for the world.
bind = "127.0.0.1:8000"
#: Sync workers, one request each at a time; the session store is shared between them.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
#: Import the application (and build its store) once in the master, before forking: a bad
#: WSGISESSION_STORE fails at start, not in every worker. The stores open their connections
#: lazily and per process, so nothing is shared across the fork.
preload_app = True
#: Restart a worker that has been stuck this long.
timeout = 30
#: gunicorn turns the proxy's ``X-Forwarded-Proto: https`` into an HTTPS request (and so a
#: Secure cookie) only for proxies at these addresses; set FORWARDED_ALLOW_IPS to change it.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server: Any) -> None:
    """Check the session settings once, before any worker starts."""
    store = os.environ["WSGISESSION_STORE"]
    if store.startswith("memory:") and server.cfg.workers > 1:
        raise SystemExit(
            f"WSGISESSION_STORE={store} keeps sessions inside each of the {server.cfg.workers} "
            "worker processes, so visitors would lose them between requests. Use "
            "WSGISESSION_STORE=sqlite:////path/sessions.db (or redis://, postgresql://), "
            "or run one worker (-w 1)."
        )
    if not os.environ.get("WSGISESSION_SECRET"):
        server.log.warning(
            "WSGISESSION_SECRET is not set: session cookies carry bare ids. Set it to a long "
            "random key (python -c 'import secrets; print(secrets.token_urlsafe(32))') so "
            "forged cookies are refused before any store query."
        )
