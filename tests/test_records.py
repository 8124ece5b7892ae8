"""The one merge rule, Changes.apply_to, and what a request sees of its session agreeing with it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import pytest
import webtest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wsgisession import SessionMiddleware, Store
from wsgisession.records import MAX_INT_DIGITS, Changes, add_amount
from wsgisession.stores import MemoryStore
from wsgisession.testing import exact

# The rule ------------------------------------------------------------------------------------


def test_removals_then_updates_then_increments() -> None:
    """A key both removed and set ends set; an increment adds to the value set in the same save."""
    data = {"gone": 1, "both": 1, "n": 10, "kept": "x"}
    changes = Changes(
        updates={"both": 2, "n": 100},
        removals=frozenset({"gone", "both", "missing"}),
        increments={"n": 1, "new": 5},
    )
    assert changes.apply_to(data) == {"both": 2, "n": 101, "new": 5, "kept": "x"}


@pytest.mark.parametrize(
    ("current", "amount", "expected"),
    [
        (None, 2, 2),
        ("12", 2, 2),  # a string is not a number, whatever it spells
        (True, 2, 2),  # nor is a bool
        ([1], 2.5, 2.5),
        (2**63 - 1, 1, 2**63),
        (-(2**63), -1, -(2**63) - 1),
        (1, 0.5, 1.5),
        (2**53 + 1, 0.0, float(2**53)),  # with a float, the int becomes a float first
        (-0.0, -0.0, -0.0),
        (0.1, 0.2, 0.1 + 0.2),
    ],
)
def test_add_amount_follows_python(current: Any, amount: int | float, expected: Any) -> None:
    """Ints add exactly at any size, a float makes a float, and non-numbers count as 0."""
    assert exact(add_amount(current, amount)) == exact(expected)


@pytest.mark.parametrize(
    ("current", "amount"),
    [
        (sys.float_info.max, sys.float_info.max),
        (10**400, 1.0),  # too large to become a float
        (10**MAX_INT_DIGITS - 1, 1),  # one digit more than Python turns into text
    ],
)
def test_a_sum_json_cannot_hold_leaves_the_value(current: Any, amount: int | float) -> None:
    """An increment whose sum JSON cannot hold changes nothing, and the other changes land."""
    assert add_amount(current, amount) is None
    data = {"x": current, "y": 1}
    assert Changes(increments={"x": amount, "y": 1}).apply_to(data) == {"x": current, "y": 2}


# The session's view agrees with the rule -----------------------------------------------------


def _ops_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Run the JSON list of [op, key, value] in the body on the session; answer with its data."""
    session = environ["wsgisession"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    for op, key, value in json.loads(environ["wsgi.input"].read(length) or b"[]"):
        if op == "set":
            session[key] = value
        elif op == "del":
            session.pop(key, None)
        elif op == "incr":
            session.increment(key, value)
        elif op == "clear":
            session.clear()
        elif op == "append" and isinstance(session.get(key), list):
            session[key].append(value)
    body = exact(dict(session)).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def _view_then_stored(store: Store, first: list[Any], second: list[Any]) -> tuple[str, str]:
    """Run *first* (it creates the session), then *second*; return its view and what is stored."""
    client = webtest.TestApp(SessionMiddleware(_ops_app, store=store))
    client.post("/", json.dumps(first), content_type="application/json")
    view = client.post("/", json.dumps(second), content_type="application/json").text
    return view, client.post("/", "[]", content_type="application/json").text


@pytest.mark.parametrize(
    "ops",
    [
        [["del", "n", None], ["incr", "n", 1]],
        [["clear", "", None], ["incr", "n", 1]],
        [["set", "n", "text"], ["incr", "n", 2]],
        [["incr", "n", 1], ["set", "n", [1]], ["append", "n", 2]],
        [["append", "cart", "b"], ["incr", "m", 0.5]],
    ],
)
def test_what_a_request_sees_is_what_is_stored(store: Store, ops: list[Any]) -> None:
    """A request's own view of its session is what the store holds after it, on every store."""
    view, stored = _view_then_stored(store, [["set", "n", 5], ["set", "cart", ["a"]]], ops)
    assert view == stored


_names = st.sampled_from(["n", "m"])
_scalars = st.none() | st.booleans() | st.text(max_size=3)
_values = st.integers(-5, 5) | st.floats(-2, 2) | _scalars | st.lists(_scalars, max_size=2)
_increment = st.tuples(st.just("incr"), _names, st.integers(-3, 3) | st.sampled_from([0.5, -0.0]))
_op = st.one_of(
    _increment,
    st.tuples(st.just("set"), _names, _values),
    st.tuples(st.just("del"), _names, st.none()),
    st.tuples(st.just("clear"), st.just(""), st.none()),
    st.tuples(st.just("append"), _names, _values),
    _increment,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(first=[("set", "n", 5)], second=[("del", "n", None), ("incr", "n", 1)])
@example(first=[("set", "n", 5)], second=[("clear", "", None), ("incr", "n", 1)])
@given(
    first=st.lists(st.tuples(st.just("set"), _names, _values), min_size=1, max_size=3),
    second=st.lists(_op, max_size=6),
)
def test_generated_requests_see_what_is_stored(first: list[Any], second: list[Any]) -> None:
    """For generated requests, the session's view equals what the store merged (MemoryStore)."""
    view, stored = _view_then_stored(MemoryStore(), first, second)
    assert view == stored
