"""A visitor of examples/login.py through the load balancer, and the figures a scenario reports.

A ``Visitor`` is one browser: its own cookie jar, and what it expects the next page to show
(its user, its page count, the flash messages it is owed, its note). Every page it loads is
checked against that; whatever differs is counted as a lost session (logged out, or the count
started again), foreign data (another visitor's user or note) or a wrong page (a flash shown
twice or never, a count off by some).
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

PASSWORDS = {"alice": "wonderland", "bob": "builder"}

_VIEWS = re.compile(r"viewed this page (\d+ times|once)")
_USER = re.compile(r'<p id="user">Logged in as (.*?)\.</p>')
_NOTE = re.compile(r'<p id="note">Your note: (.*?)</p>')
_FLASH = re.compile(r'<li class="flash">(.*?)</li>')
_TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Sample:
    """One request: when it started, how long it took, who served it, and what went wrong."""

    started: float
    seconds: float
    host: str
    status: int
    error: str | None = None


@dataclass
class Figures:
    """What a scenario measured, collected from many visitor threads at once."""

    scenario: str
    store: str
    samples: list[Sample] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, sample: Sample) -> None:
        """Record one request."""
        with self._lock:
            self.samples.append(sample)

    def problem(self, kind: str, text: str) -> None:
        """Record a page that differed from what its visitor expected."""
        with self._lock:
            getattr(self, kind).append(text)

    @property
    def errors(self) -> list[str]:
        """Requests that failed: no answer, or a status the application never sends."""
        return [f"{s.host} {s.status} {s.error}" for s in self.samples if s.error]

    def hosts(self) -> Counter[str]:
        """How many requests each host served."""
        return Counter(s.host for s in self.samples if not s.error)

    def percentile(self, fraction: float) -> float:
        """The latency below which *fraction* of the requests finished, in milliseconds."""
        times = sorted(s.seconds for s in self.samples)
        if not times:
            return 0.0
        return 1000 * times[min(len(times) - 1, int(fraction * len(times)))]

    def line(self, **extra: object) -> str:
        """The one-line report a scenario prints."""
        hosts = ",".join(f"{name}:{count}" for name, count in sorted(self.hosts().items()))
        more = "".join(f" {key}={value}" for key, value in extra.items())
        for kind in ("lost", "foreign", "wrong", "errors"):
            if getattr(self, kind):
                more += f" first_{kind}={getattr(self, kind)[:3]}"
        return (
            f"[multihost] {self.scenario} store={self.store} requests={len(self.samples)} "
            f"hosts_hit={len(self.hosts())} ({hosts}) sessions_lost={len(self.lost)} "
            f"foreign={len(self.foreign)} wrong={len(self.wrong)} errors={len(self.errors)} "
            f"p50={self.percentile(0.50):.1f}ms p99={self.percentile(0.99):.1f}ms{more}"
        )


class Visitor:
    """One browser session against the login example, checking every page it gets."""

    def __init__(self, base_url: str, figures: Figures, name: str, user: str) -> None:
        self.base_url = base_url
        self.figures = figures
        self.name = name
        self.user = user
        self.http = requests.Session()
        self.views = 0
        self.logged_in = False
        # The example keeps no session for an anonymous visitor, so it counts views only once
        # a session exists (from the login on).
        self.has_session = False
        self.note: str | None = None
        self.owed_flashes: list[str] = []
        self.token = ""
        self.unsure = False  # a request failed: its effect on the count is not known
        self.last_host = ""
        self.pages_by_host: Counter[str] = Counter()

    def _send(self, method: str, path: str, data: dict[str, str] | None = None) -> str | None:
        """Send one request, record it, and return the body (None when it failed)."""
        started = time.monotonic()
        try:
            response = self.http.request(
                method, self.base_url + path, data=data, allow_redirects=False, timeout=30
            )
        except requests.RequestException as exc:
            seconds = time.monotonic() - started
            self.figures.add(Sample(started, seconds, "-", 0, type(exc).__name__))
            self.unsure = True
            return None
        seconds = time.monotonic() - started
        # A reply nginx made itself (a 502) names no host; nginx's X-Upstream says whom it tried.
        host = response.headers.get("X-Served-By") or f"-({response.headers.get('X-Upstream')})"
        expected = 200 if method == "GET" else 303
        error = None if response.status_code == expected else f"{method} {path}"
        self.figures.add(Sample(started, seconds, host, response.status_code, error))
        self.last_host = host
        if error:
            self.unsure = True
            return None
        return response.text

    def page(self) -> bool:
        """Load the page and check it; return whether it showed this visitor's session intact."""
        body = self._send("GET", "/")
        if body is None:
            return False
        if self.has_session:
            self.views += 1
        where = f"{self.name} on {self.last_host} (page {self.views})"
        found = _VIEWS.search(body)
        views = (
            (0 if not self.has_session else -1)
            if found is None
            else 1
            if found.group(1) == "once"
            else int(found.group(1)[:-6])
        )
        user = html.unescape(m.group(1)) if (m := _USER.search(body)) else None
        note = html.unescape(m.group(1)) if (m := _NOTE.search(body)) else None
        flashes = [html.unescape(f) for f in _FLASH.findall(body)]
        token = _TOKEN.search(body)
        self.token = html.unescape(token.group(1)) if token else ""
        intact = True
        if self.logged_in and user is None:
            self.figures.problem("lost", f"{where}: logged out")
            intact = False
        elif views < self.views and not (self.unsure and views == self.views - 1):
            self.figures.problem("lost", f"{where}: count {views}, expected {self.views}")
            intact = False
        if (user is not None and user != self.user) or (note is not None and note != self.note):
            self.figures.problem("foreign", f"{where}: user {user!r} note {note!r}")
            intact = False
        if intact and not self.unsure:
            if views != self.views:
                self.figures.problem("wrong", f"{where}: count {views}, expected {self.views}")
                intact = False
            if flashes != self.owed_flashes:
                self.figures.problem("wrong", f"{where}: flashes {flashes} != {self.owed_flashes}")
                intact = False
        if self.unsure and intact:
            self.views = views  # the failed request's effect is known now
            self.unsure = False
        self.owed_flashes = []
        if intact:
            self.pages_by_host[self.last_host] += 1
        return intact

    def log_in(self) -> bool:
        """Open the page for a form token, then log in; return whether the login went through."""
        if not self.page():
            return False
        form = {"username": self.user, "password": PASSWORDS[self.user], "csrf_token": self.token}
        if self._send("POST", "/login", form) is None:
            return False
        self.logged_in = True
        self.has_session = True
        self.owed_flashes = [f"Welcome, {self.user}."]
        self.token = ""  # login moved the session to a new id, with a new form token
        return True

    def save_note(self, text: str) -> bool:
        """Post a note (after loading the page for its form token, when it has none)."""
        if not self.token and not self.page():
            return False
        form = {"note": text, "csrf_token": self.token}
        if self._send("POST", "/note", form) is None:
            return False
        self.note = text
        self.owed_flashes = ["note saved"]
        return True

    def is_logged_in(self) -> bool:
        """Load the page and tell whether it shows this visitor logged in (no other checks)."""
        body = self._send("GET", "/")
        if body is None:
            return False
        found = _USER.search(body)
        if self.has_session:
            self.views += 1
        token = _TOKEN.search(body)
        self.token = html.unescape(token.group(1)) if token else ""
        self.owed_flashes = []
        self.unsure = True
        return found is not None and html.unescape(found.group(1)) == self.user

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()
