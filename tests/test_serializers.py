"""Serializers: strict JSON by default, and the opt-in TaggedJSONSerializer (issue 15.5).

The tagged serializer round-trips tuple, bytes, datetime, date, time, timedelta, UUID, Decimal
(and markupsafe's Markup) exactly, on every store, and a value of the user's that looks like a
tag round-trips too. It is still JSON, never pickle.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import webtest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.clients import SessionClient
from tests.support.stores import make_store
from wsgisession import JSONSerializer, Session, Store, TaggedJSONSerializer
from wsgisession.records import Changes
from wsgisession.testing import DAY, NOW, new_key

TAGGED = TaggedJSONSerializer()
PARIS = ZoneInfo("Europe/Paris")
EAST = timezone(timedelta(hours=5, minutes=30))

#: One value of each kind the tagged serializer holds, by name.
VALUES: dict[str, Any] = {
    "tuple": (1, "two", [3], (4.5, None)),
    "empty-tuple": (),
    "bytes": b"\x00\xffbinary\n",
    "empty-bytes": b"",
    "datetime-naive": datetime(2024, 5, 1, 12, 30, 15, 123456),
    "datetime-utc": datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc),
    "datetime-offset": datetime(2024, 5, 1, 12, 30, 0, 7, tzinfo=EAST),
    "datetime-zoneinfo": datetime(2024, 7, 1, 9, 0, tzinfo=PARIS),
    "datetime-zoneinfo-fold": datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    "datetime-naive-fold": datetime(2024, 10, 27, 2, 30, fold=1),
    "date": date(1999, 12, 31),
    "time": time(23, 59, 59, 999999),
    "time-aware": time(8, 0, tzinfo=timezone(timedelta(hours=-3))),
    "timedelta": timedelta(days=-2, seconds=5, microseconds=7),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("1.10"),
    "decimal-exponent": Decimal("-1.5E+12"),
    "decimal-negative-zero": Decimal("-0"),
    "nested": {"when": [date(2020, 1, 1), (b"x", {"id": uuid.UUID(int=7)})]},
    "plain": {"a": [1, 2.5, "x", None, True]},
}

#: Values of the user's that look like tags (or tag escapes) and must come back as they are.
LOOKALIKES: dict[str, Any] = {
    "tag-list": ["$tuple", [1, 2]],
    "tag-list-bytes": ["$bytes", "AA=="],
    "escaped-looking": ["$$tuple", [1]],
    "dollar-only": ["$", 1],
    "unknown-tag": ["$nope", 1],
    "tag-in-tuple": ("$date", "2020-01-01"),
    "dict-tag-key": {"$tuple": [1, 2]},
    "dict-of-lookalikes": {"$uuid": ["$uuid", "x"], "k": ["$$$", []]},
    "tag-string": "$datetime",
    "prices": ["$5", "$10"],
}


def _same(left: Any, right: Any) -> bool:
    """Equal, of the same type all the way down, with the same zone and fold for times."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, (datetime, time)):
        return (
            left == right
            and left.fold == right.fold
            and left.utcoffset() == right.utcoffset()
            and getattr(left.tzinfo, "key", None) == getattr(right.tzinfo, "key", None)
            and left.replace(tzinfo=None) == right.replace(tzinfo=None)
        )
    if isinstance(left, Decimal):
        return str(left) == str(right)
    return bool(left == right)


@pytest.mark.parametrize("name", sorted(VALUES))
def test_tagged_values_round_trip_exactly(name: str) -> None:
    """Each kind comes back equal and of the same type, zone and fold."""
    value = VALUES[name]
    text = TAGGED.dumps(value)
    json.loads(text)  # it is JSON
    assert _same(TAGGED.loads(text), value)
    assert _same(TAGGED.loads(text.encode("utf-8")), value)


@pytest.mark.parametrize("name", sorted(LOOKALIKES))
def test_values_that_look_like_tags_round_trip(name: str) -> None:
    """A list whose first item starts with "$", and dicts with "$" keys, come back unchanged."""
    value = LOOKALIKES[name]
    assert _same(TAGGED.loads(TAGGED.dumps(value)), value)
    assert _same(TAGGED.loads(TAGGED.dumps({"k": [value]})), {"k": [value]})


def test_the_tagged_format_is_readable_json() -> None:
    """Tags are two-item lists; dicts (the session's keys) are never rewritten."""
    assert TAGGED.dumps((1, 2)) == '["$tuple",[1,2]]'
    assert TAGGED.dumps(b"\x00") == '["$bytes","AA=="]'
    assert TAGGED.dumps(datetime(2024, 5, 1, 12)) == '["$datetime","2024-05-01T12:00:00"]'
    assert TAGGED.dumps(Decimal("1.10")) == '["$decimal","1.10"]'
    assert TAGGED.dumps(["$x", 1]) == '["$$x",1]'
    assert TAGGED.dumps({"$tuple": 1, "a": (2,)}) == '{"$tuple":1,"a":["$tuple",[2]]}'


def test_plain_json_text_reads_the_same_through_the_tagged_serializer() -> None:
    """Text with no string starting with "$" is read exactly as plain JSON reads it."""
    text = JSONSerializer().dumps({"a": [1, {"b": "c"}], "d": "e$"})
    assert TAGGED.loads(text) == json.loads(text)


@pytest.mark.parametrize(
    "value",
    [{1, 2}, frozenset(), object(), bytearray(b"x"), float("nan"), [float("inf")], {1: "a"}],
    ids=["set", "frozenset", "object", "bytearray", "nan", "inf", "int-key"],
)
def test_tagged_refuses_what_it_cannot_hold(value: Any) -> None:
    """Still strict: sets, arbitrary objects, NaN and non-str keys are refused."""
    with pytest.raises((TypeError, ValueError)):
        TAGGED.dumps(value)


@pytest.mark.parametrize("text", ['["$uuid","nope"]', '["$bytes","@@"]', '["$timedelta","x"]'])
def test_a_malformed_tag_is_corrupt_input(text: str) -> None:
    """A forged or damaged tag raises ValueError, which stores treat as a corrupt record."""
    with pytest.raises(ValueError):
        TAGGED.loads(text)


def test_subclasses_are_written_as_their_base() -> None:
    """An IntEnum, a str subclass, an OrderedDict or a datetime subclass keep their value."""
    import enum
    from collections import OrderedDict

    class Level(enum.IntEnum):
        HIGH = 3

    class Stamp(datetime):
        pass

    value = [Level.HIGH, OrderedDict(a=1), Stamp(2024, 1, 2, tzinfo=timezone.utc)]
    back = TAGGED.loads(TAGGED.dumps(value))
    assert back == [3, {"a": 1}, datetime(2024, 1, 2, tzinfo=timezone.utc)]
    assert type(back[0]) is int and type(back[2]) is datetime


def test_markup_round_trips_and_markupsafe_is_not_imported() -> None:
    """Markup is kept when markupsafe is in use; importing the serializer never imports it."""
    code = (
        "import sys\n"
        "from wsgisession.serializers import TaggedJSONSerializer\n"
        "s = TaggedJSONSerializer()\n"
        "s.loads(s.dumps(['x', ('y',)]))\n"
        "assert 'markupsafe' not in sys.modules\n"
        "from markupsafe import Markup\n"
        "back = s.loads(s.dumps({'m': Markup('<b>hi</b>')}))['m']\n"
        "assert type(back) is Markup and back == '<b>hi</b>', back\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=["Cs"])),
    st.binary(),
    st.datetimes(timezones=st.sampled_from([None, timezone.utc, EAST, PARIS])),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.sampled_from(["$", "$tuple", "$$x", "$uuid"]),
)
_tagged_values = st.recursive(
    _atoms,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=["Cs"]), max_size=8), children, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_tagged_values)
def test_tagged_round_trip_property(value: Any) -> None:
    """Any nesting of the tagged kinds and plain JSON comes back the same."""
    assert _same(TAGGED.loads(TAGGED.dumps(value)), value)


# Every store, with the tagged serializer --------------------------------------------------------


@pytest.fixture
def tagged_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Store]:
    """A fresh store of each kind, built with serializer=TaggedJSONSerializer()."""
    store = make_store(store_kind, tmp_path, request, serializer=TaggedJSONSerializer())
    assert isinstance(store.serializer, TaggedJSONSerializer) or store_kind == "postgres"
    yield store
    store.close()


def test_every_store_round_trips_tagged_values(tagged_store: Store) -> None:
    """Create, load, save (updates, removals, increments), load: values exact on each store."""
    store = tagged_store
    key = new_key()
    data = {name: VALUES[name] for name in sorted(VALUES)}
    data.update({f"look-{name}": value for name, value in LOOKALIKES.items()})
    store.create(key, data, {"created": NOW}, NOW + DAY, NOW)
    record = store.load(key, NOW)
    assert record is not None and _same(record.data, data)

    updates = {"added": (date(2030, 1, 1), b"\x01"), "uuid": uuid.UUID(int=1)}
    removals = frozenset({"bytes"})
    expected = {k: v for k, v in data.items() if k not in removals} | updates | {"n": 2}
    changes = Changes(updates, removals, {"n": 2}, None, None, record, expected)
    assert store.save(key, changes, NOW)
    record = store.load(key, NOW)
    assert record is not None and _same(record.data, expected)

    # An overlapping save (stale base): the store merges into what it holds now.
    stale = Changes({"late": ("$tuple", Decimal("2.5"))}, frozenset(), {}, None, None, None, {})
    assert store.save(key, stale, NOW)
    record = store.load(key, NOW)
    assert record is not None
    assert _same(record.data, expected | {"late": ("$tuple", Decimal("2.5"))})


def test_sessions_hold_tagged_values_through_the_middleware(tagged_store: Store) -> None:
    """Through the middleware: values set are read back exactly, with their types."""
    browser = SessionClient(tagged_store)
    when = datetime(2024, 5, 1, 12, 0, tzinfo=PARIS)

    def start(session: Session) -> None:
        session.update(when=when, pair=([1], "b"), blob=b"\x00", price=Decimal("9.99"))

    browser.run(start)
    assert _same(browser.data(), {"when": when, "pair": ([1], "b"), "blob": b"\x00",
                                  "price": Decimal("9.99")})  # fmt: skip


def test_cookie_store_round_trips_tagged_values() -> None:
    """CookieStore seals the tagged text too."""
    pytest.importorskip("cryptography")
    from wsgisession import CookieStore, SessionMiddleware

    value = {"d": date(2024, 2, 29), "t": (1, (2,)), "u": uuid.UUID(int=9)}
    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        session = environ["wsgisession"]
        if environ["PATH_INFO"] == "/set":
            session.update(value)
        else:
            seen.append(dict(session))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    store = CookieStore(serializer=TaggedJSONSerializer())
    client = webtest.TestApp(SessionMiddleware(app, store=store, secret_keys=["k" * 32]))
    client.get("/set")
    client.get("/get")
    assert _same(seen, [value])


def test_plain_json_stays_the_default(store: Store) -> None:
    """Without serializer=, stores use JSONSerializer, which refuses a datetime."""
    assert type(store.serializer) is JSONSerializer or type(store.serializer).__name__ == "_NulSafe"
    with pytest.raises(TypeError):
        JSONSerializer().dumps(datetime(2024, 1, 1))
