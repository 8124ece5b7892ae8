"""Session ids and their signing: ids, signed cookies, key rotation, tampering, hashed keys."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import webtest

from tests.support.app import wrap
from tests.support.clients import KEYS, session_cookie, set_cookies, signed_client
from wsgisession import SqliteStore, Store
from wsgisession.signing import hash_id


def test_ids_are_distinct_long_and_url_safe(store: Store) -> None:
    """T01: 1,000 new sessions get 1,000 distinct 43-character url-safe ids."""
    middleware, _ = wrap(store)
    ids = set()
    for _ in range(1000):
        ids.add(session_cookie(webtest.TestApp(middleware).get("/set?a=1")))
    assert len(ids) == 1000
    assert all(i is not None and re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)
    prefixes = {i[:4] for i in ids if i}
    assert len(prefixes) > 900


def test_signed_cookie_is_id_dot_signature(store: Store) -> None:
    """With secret_keys the cookie is id.signature and works across requests."""
    client, _ = signed_client(store)
    value = session_cookie(client.get("/set?a=1"))
    assert value and re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", value)
    assert client.get("/get?a=").json == {"a": "1"}


def test_one_changed_signature_character_is_rejected_unread(store: Store) -> None:
    """T26: a signature altered in one character gives a fresh session and no store read."""
    client, counting = signed_client(store)
    value = session_cookie(client.get("/set?a=1"))
    assert value
    flipped = value[:-1] + ("A" if value[-1] != "A" else "B")
    counting.reset()  # type: ignore[attr-defined]
    attacker = webtest.TestApp(client.app)
    attacker.set_cookie("wsgisession", flipped)
    assert attacker.get("/get?a=").json == {"a": None}
    assert counting.calls == []  # type: ignore[attr-defined]


def test_malformed_signed_values_are_rejected_unread(store: Store) -> None:
    """T27: appended bytes, a truncated signature, an empty value, a bare signature: no read."""
    client, counting = signed_client(store)
    value = session_cookie(client.get("/set?a=1"))
    assert value
    session_id, signature = value.split(".")
    counting.reset()  # type: ignore[attr-defined]
    for bad in [
        value + "x",
        value + ".x",
        f"{session_id}.{signature[:-3]}",
        "",
        f".{signature}",
        signature,
    ]:
        attacker = webtest.TestApp(client.app)
        response = attacker.get("/get?a=", headers={"Cookie": f"wsgisession={bad}"})
        assert response.json == {"a": None}, bad
    assert counting.calls == []  # type: ignore[attr-defined]


def test_key_rotation(store: Store) -> None:
    """T28: an old-key cookie works under [new, old], is re-signed on write, dies once old goes."""
    old_client, _ = signed_client(store, KEYS[1])
    old_value = session_cookie(old_client.get("/set?user=bob"))
    assert old_value

    rotating, _ = signed_client(store, KEYS)
    rotating.set_cookie("wsgisession", old_value)
    read = rotating.get("/get?user=")
    assert read.json == {"user": "bob"}
    assert set_cookies(read) == []
    written = rotating.get("/set?x=1")
    new_value = session_cookie(written)
    assert new_value and new_value != old_value
    assert new_value.split(".")[0] == old_value.split(".")[0]

    new_only, _ = signed_client(store, KEYS[0])
    new_only.set_cookie("wsgisession", old_value)
    assert new_only.get("/get?user=").json == {"user": None}
    new_only.set_cookie("wsgisession", new_value)
    assert new_only.get("/get?user=").json == {"user": "bob"}


def test_unsigned_id_is_rejected_when_keys_are_set(store: Store) -> None:
    """T29: a bare id is refused once secret_keys are configured (no downgrade)."""
    plain, _ = wrap(store)
    bare = session_cookie(webtest.TestApp(plain).get("/set?user=bob"))
    client, counting = signed_client(store)
    client.set_cookie("wsgisession", bare)
    assert client.get("/get?user=").json == {"user": None}
    assert counting.calls == []  # type: ignore[attr-defined]


def test_sqlite_rows_never_hold_the_raw_id(tmp_path: Path) -> None:
    """T11: the SQLite file holds the hash of the id, never the id itself."""
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    middleware, _ = wrap(store)
    session_id = session_cookie(webtest.TestApp(middleware).get("/set?user=bob"))
    assert session_id
    store.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT key, data, meta FROM wsgisession_sessions").fetchall()
    assert rows == [(hash_id(session_id), '{"user":"bob"}', rows[0][2])]
    assert session_id.encode() not in path.read_bytes()
