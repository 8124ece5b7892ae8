"""examples/login.py on three hosts behind nginx, sharing one Redis or PostgreSQL store.

Each scenario prints one ``[multihost]`` line of figures (run with ``-s`` to see them): requests,
hosts hit, sessions lost, foreign data, wrong pages, errors, and p50/p99 latency as the client
sees it through the balancer.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.servers import AppHost, Nginx

from .client import Figures, Visitor
from .conftest import HOSTS, HostStarter

pytestmark = pytest.mark.multihost

OLD, NEW = "old-key-" + "o" * 24, "new-key-" + "n" * 24


def test_one_session_on_every_host(balancer: Nginx, hosts: list[AppHost], store_kind: str) -> None:
    """A logged-in visitor's next 100 requests reach all three hosts, its session whole on each."""
    figures = Figures("a-one-session-all-hosts", store_kind)
    visitor = Visitor(balancer.url, figures, "visitor", "alice")
    assert visitor.log_in()
    figures.samples.clear()  # the figures are for the 100 requests after the login
    flashed_on: set[str] = set()
    for n in range(100):
        if n % 10 == 9:
            visitor.save_note(f"note {n} of the one visitor")
        else:
            owed = bool(visitor.owed_flashes)
            if visitor.page() and owed:
                flashed_on.add(visitor.last_host)
    visitor.close()
    print(
        "\n"
        + figures.line(
            pages_intact_by_host=dict(sorted(visitor.pages_by_host.items())),
            flash_shown_on=",".join(sorted(flashed_on)),
        )
    )
    assert len(figures.samples) == 100
    assert set(figures.hosts()) == {f"host{n + 1}" for n in range(HOSTS)}
    assert set(visitor.pages_by_host) == set(figures.hosts()), "a host served a broken page"
    assert flashed_on == set(figures.hosts()), "every host showed a flash message once"
    assert (figures.lost, figures.foreign, figures.wrong, figures.errors) == ([], [], [], [])


def test_host_killed_mid_run(balancer: Nginx, hosts: list[AppHost], store_kind: str) -> None:
    """30 visitors x 100 requests; host2's gunicorn master is SIGKILLed halfway; nothing is lost."""
    figures = Figures("b-host-killed", store_kind)
    clients, per_client = 30, 100
    victim = hosts[1]
    killed_at: list[float] = []
    gone_at: list[float] = []

    def visit(n: int) -> Visitor:
        visitor = Visitor(balancer.url, figures, f"visitor{n}", "alice" if n % 2 else "bob")
        visitor.log_in()
        for i in range(per_client - 2):
            if i % 20 == 10:
                visitor.save_note(f"note {i} of visitor {n}")
            else:
                visitor.page()
        visitor.close()
        return visitor

    def kill_halfway() -> None:
        deadline = time.monotonic() + 120
        while len(figures.samples) < clients * per_client // 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        victim.kill_master()
        killed_at.append(time.monotonic())
        while victim.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        gone_at.append(time.monotonic())

    killer = threading.Thread(target=kill_halfway)
    killer.start()
    with ThreadPoolExecutor(clients) as pool:
        visitors = list(pool.map(visit, range(clients)))
    killer.join()
    assert killed_at and gone_at, "the run ended before the kill"
    after_kill = [s for s in figures.samples if s.started >= killed_at[0]]
    after_gone = [s for s in figures.samples if s.started >= gone_at[0]]
    victim_after_kill = sum(1 for s in after_kill if s.host == victim.host.name)
    print(
        "\n"
        + figures.line(
            killed=victim.host.name,
            requests_after_kill=len(after_kill),
            served_by_killed_after_kill=victim_after_kill,
            orphans_gone_after_ms=round(1000 * (gone_at[0] - killed_at[0])),
            served_by_killed_after_gone=sum(1 for s in after_gone if s.host == victim.host.name),
        )
    )
    assert len(figures.samples) == clients * per_client
    assert set(figures.hosts()) == {f"host{n + 1}" for n in range(HOSTS)}
    assert after_gone, "no request was sent after the killed host's last process exited"
    assert {s.host for s in after_gone} <= {h.host.name for h in hosts if h is not victim}
    assert all(v.logged_in for v in visitors)
    assert (figures.lost, figures.foreign, figures.wrong, figures.errors) == ([], [], [], [])


def _phase(visitors: list[Visitor], pages: int = 6) -> dict[str, int]:
    """Every visitor loads the page *pages* times, one after another; say how many hosts each saw.

    Round robin over three hosts and a number of visitors that is not a multiple of three
    send each visitor to every host in turn.
    """
    seen: dict[str, set[str]] = {visitor.name: set() for visitor in visitors}
    for _ in range(pages):
        for visitor in visitors:
            visitor.page()
            seen[visitor.name].add(visitor.last_host)
    return {name: len(hosts) for name, hosts in seen.items()}


def test_key_rotation_host_by_host(
    balancer: Nginx, start_host: HostStarter, store_kind: str
) -> None:
    """New key accepted everywhere before any host signs with it: nobody is logged out early."""
    figures = Figures("c-key-rotation", store_kind)
    for n in range(HOSTS):
        start_host(n, [OLD])
    active = [
        Visitor(balancer.url, figures, f"active{n}", "alice" if n % 2 else "bob") for n in range(4)
    ]
    seen_late, never_seen = (
        Visitor(balancer.url, figures, name, "alice")
        for name in ("seen-before-drop", "idle-until-drop")
    )
    for visitor in [*active, seen_late, never_seen]:
        assert visitor.log_in()
        visitor.page()
    lost_by_phase: dict[str, int] = {}

    def phase(name: str, keys: list[list[str]]) -> None:
        for n, host_keys in enumerate(keys):
            start_host(n, host_keys)  # a rolling restart: the other hosts keep serving
        hosts_seen = _phase(active)
        assert set(hosts_seen.values()) == {HOSTS}, f"{name}: {hosts_seen}"
        lost_by_phase[name] = len(figures.lost)

    phase("1-one-host-accepts-new", [[OLD, NEW], [OLD], [OLD]])
    phase("2-all-accept-new", [[OLD, NEW], [OLD, NEW], [OLD, NEW]])
    phase("3-one-host-signs-new", [[NEW, OLD], [OLD, NEW], [OLD, NEW]])
    phase("4-all-sign-new", [[NEW, OLD], [NEW, OLD], [NEW, OLD]])
    assert seen_late.page(), "a visitor back while the old key is still accepted stays logged in"
    phase("5-old-dropped", [[NEW], [NEW], [NEW]])
    still_in = seen_late.is_logged_in()
    logged_out = not never_seen.is_logged_in()
    print(
        "\n"
        + figures.line(
            lost_by_phase=lost_by_phase,
            resigned_visitor_still_in=still_in,
            old_cookie_logged_out_after_drop=logged_out,
        )
    )
    assert (figures.lost, figures.foreign, figures.wrong, figures.errors) == ([], [], [], [])
    assert still_in, "a cookie re-signed with the new key survives the old key's removal"
    assert logged_out, "a cookie signed only with the dropped key no longer logs anyone in"


def test_key_rotation_signing_before_accepting(
    balancer: Nginx, start_host: HostStarter, store_kind: str
) -> None:
    """[new, old] on one host while the others know only [old] logs visitors out: the order matters.

    The host that signs with the new key re-signs every cookie it sees; the hosts that do not
    know that key cannot check such a cookie, so they start a fresh session. This is why the
    README rolls a new key out as an accepted (second) key everywhere before any host signs
    with it.
    """
    figures = Figures("c-key-rotation-signing-first", store_kind)
    for n in range(HOSTS):
        start_host(n, [OLD])
    visitors = [Visitor(balancer.url, figures, f"visitor{n}", "alice") for n in range(4)]
    for visitor in visitors:
        assert visitor.log_in()
        visitor.page()
    start_host(0, [NEW, OLD])
    assert set(_phase(visitors).values()) == {HOSTS}
    logged_out = sum(1 for visitor in visitors if not visitor.is_logged_in())
    print("\n" + figures.line(visitors=len(visitors), logged_out_by_canary=logged_out))
    assert figures.errors == []
    assert logged_out > 0
