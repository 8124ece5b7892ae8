"""How session values become text for a store: JSON by default, never pickle.

A serializer turns one value into a ``str`` and back. JSON is the default because it cannot
run code when it is read back: a leaked store or key never becomes remote code execution.
:class:`TaggedJSONSerializer` is the opt-in for values JSON lacks (datetimes, UUIDs, bytes,
tuples, decimals, ...): still JSON text, still no code, each such value written as a tagged list.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = ["JSONSerializer", "Serializer", "TaggedJSONSerializer", "utf8_size"]


def utf8_size(text: str) -> int:
    """The length of *text* in UTF-8 bytes, what a store or cookie holds (not its characters).

    Free for ASCII text (``str.isascii`` is O(1) in CPython); other text is encoded once. A lone
    surrogate counts as UTF-8 would write it with ``surrogatepass`` (serializers refuse it).
    """
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@runtime_checkable
class Serializer(Protocol):
    """Turns values into text and back; ``dumps`` raises TypeError or ValueError for a bad value."""

    def dumps(self, value: Any) -> str:
        """Return *value* as text; raise TypeError/ValueError when it cannot be held."""
        ...

    def loads(self, data: str | bytes) -> Any:
        """Return the value that :meth:`dumps` turned into *data*; raise ValueError when corrupt."""
        ...


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or Infinity)")


class JSONSerializer:
    """Compact, strict JSON: no NaN or Infinity either way, UTF-8 text kept as is.

    Like :mod:`json` it writes int, float, bool and None dict keys as strings; the session
    refuses such keys when a value is set, so this path (every store write) stays lean.
    """

    __slots__ = ("_encoder", "_decoder")

    #: What this serializer holds, for error messages.
    holds = "str, int, float, bool, None, list, dict with str keys"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=True
        )
        # Python's json reads NaN and Infinity by default; JSON has neither, so a stored text
        # holding one was not written by a JSON serializer and counts as corrupt.
        self._decoder = json.JSONDecoder(parse_constant=_refuse_constant)

    def dumps(self, value: Any) -> str:
        """Return *value* as compact JSON text.

        Raises ValueError for text that UTF-8 cannot hold (a lone surrogate), for NaN or
        Infinity and for ints too long to write; TypeError for types JSON lacks.
        """
        kind = value.__class__
        if kind is int:
            return int.__repr__(value)  # what the encoder writes, without building one per call
        if kind is bool:
            return "true" if value else "false"
        if value is None:
            return "null"
        return self._encode(value)

    def _encode(self, value: Any) -> str:
        text = self._encoder.encode(value)
        if not text.isascii():
            # A lone surrogate ("\udcff") passes json but no store or cookie can write it as
            # UTF-8: refuse it now, when the value is set, not with a crash at save time.
            text.encode("utf-8")
        return text

    def loads(self, data: str | bytes) -> Any:
        """Parse JSON text (or UTF-8 bytes); a corrupt input raises ValueError."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data).decode("utf-8")
        decoder = self._decoder
        try:
            # One scan in C. Text with whitespace around its value, and anything this refuses
            # (corrupt, NaN), goes through decode(), whose verdict stands.
            value, end = decoder.raw_decode(data)
        except ValueError:
            end = -1
        if end == len(data):
            return value
        return decoder.decode(data)


# The tagged serializer ------------------------------------------------------------------------

#: The types written as they are: JSON has them, and they cannot change in place.
_PLAIN = frozenset((str, int, float, bool, type(None)))


def _encode_datetime(value: datetime) -> Any:
    zone = value.tzinfo
    key = getattr(zone, "key", None)  # a zoneinfo.ZoneInfo keeps its name: DST rules survive
    if isinstance(key, str) and type(zone).__module__ == "zoneinfo":
        return [value.replace(tzinfo=None).isoformat(), key, value.fold]
    if zone is not None and not isinstance(zone, timezone):
        offset = value.utcoffset()
        value = value.replace(tzinfo=None if offset is None else timezone(offset))
    if value.fold:
        return [value.replace(tzinfo=None).isoformat(), _offset_seconds(value.tzinfo), 1]
    return value.isoformat()


def _offset_seconds(zone: tzinfo | None) -> float | None:
    offset = None if zone is None else zone.utcoffset(None)
    return None if offset is None else offset.total_seconds()


def _decode_datetime(payload: Any) -> datetime:
    if isinstance(payload, str):
        return datetime.fromisoformat(payload)
    text, zone, fold = payload
    value = datetime.fromisoformat(text)
    if isinstance(zone, str):
        from zoneinfo import ZoneInfo

        return value.replace(tzinfo=ZoneInfo(zone), fold=fold)
    if zone is not None:
        value = value.replace(tzinfo=timezone(timedelta(seconds=zone)))
    return value.replace(fold=fold)


def _encode_time(value: time) -> Any:
    zone = value.tzinfo
    if zone is not None and not isinstance(zone, timezone):
        offset = value.utcoffset()
        value = value.replace(tzinfo=None if offset is None else timezone(offset))
    if value.fold:
        return [value.replace(tzinfo=None).isoformat(), _offset_seconds(value.tzinfo), 1]
    return value.isoformat()


def _decode_time(payload: Any) -> time:
    if isinstance(payload, str):
        return time.fromisoformat(payload)
    text, zone, fold = payload
    value = time.fromisoformat(text)
    if zone is not None:
        value = value.replace(tzinfo=timezone(timedelta(seconds=zone)))
    return value.replace(fold=fold)


def _decode_bytes(payload: Any) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise ValueError(f"a tagged bytes value is not base64: {exc}") from exc


def _decode_markup(payload: Any) -> Any:
    try:
        from markupsafe import Markup
    except ImportError:  # pragma: no cover - written where markupsafe was installed
        return str(payload)  # the text survives; only its "safe" mark is lost
    return Markup(payload)


#: Tag → how to rebuild the value from its payload (a tuple's payload is untagged first).
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$tuple": tuple,
    "$bytes": _decode_bytes,
    "$datetime": _decode_datetime,
    "$date": date.fromisoformat,
    "$time": _decode_time,
    "$timedelta": lambda payload: timedelta(*payload),
    "$uuid": uuid.UUID,
    "$decimal": Decimal,
    "$markup": _decode_markup,
}


class TaggedJSONSerializer(JSONSerializer):
    """JSON that also holds tuple, bytes, datetime, date, time, timedelta, UUID and Decimal.

    Opt in with ``SqliteStore(path, serializer=TaggedJSONSerializer())`` (any store takes
    ``serializer=``). The text is still JSON, and reading it never runs code: it is not pickle.
    Each value JSON lacks is written as a two-item list, a tag and a JSON payload::

        (1, 2)                          ["$tuple",[1,2]]
        b"\\x00"                          ["$bytes","AA=="]
        datetime(2024, 5, 1, 12, 0)     ["$datetime","2024-05-01T12:00:00"]
        UUID("...")  Decimal("1.10")    ["$uuid","..."]  ["$decimal","1.10"]

    A list of your own whose first item is a str starting with ``$`` is written with one more
    ``$`` in front of that item, so it round-trips too; dicts are never rewritten, so the
    session's keys stay as they are and stores keep merging them one by one. ``markupsafe``'s
    ``Markup`` is kept when that package is installed (it is never imported to write a value).

    Values come back equal and of the same type. Aware datetimes keep their UTC offset, and a
    ``zoneinfo.ZoneInfo`` zone keeps its name; other tzinfo classes come back as the fixed
    offset they had. Writing walks the value in Python, so it costs more than plain JSON;
    reading walks only a text that holds a string starting with ``$``.
    """

    __slots__ = ()

    holds = (
        JSONSerializer.holds
        + ", tuple, bytes, datetime, date, time, timedelta, UUID, Decimal "
        + "(and markupsafe.Markup)"
    )

    def dumps(self, value: Any) -> str:
        """Return *value* as JSON text, with a tag for each value JSON lacks."""
        if value.__class__ in _PLAIN:
            return super().dumps(value)
        return self._encode(self._tag(value))  # _tag has refused non-str keys already

    def loads(self, data: str | bytes) -> Any:
        """Parse text written by :meth:`dumps`; a corrupt input raises ValueError."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data).decode("utf-8")
        value = super().loads(data)
        if '"$' not in data:
            return value  # no string starts with "$", so there is no tag to read
        try:
            return self._untag(value)
        except (TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"a tagged value is malformed: {exc}") from exc

    def _tag(self, value: Any) -> Any:
        """Return *value* with every value JSON lacks replaced by its tagged list."""
        kind = value.__class__
        if kind in _PLAIN:
            return value
        if kind is dict:
            tagged = {}
            for name, item in value.items():
                if name.__class__ is not str and not isinstance(name, str):
                    raise TypeError(
                        f"a dict key {name!r} of type {type(name).__name__}: dict keys must be str"
                    )
                tagged[name] = item if item.__class__ in _PLAIN else self._tag(item)
            return tagged
        if kind is list:
            items = [item if item.__class__ in _PLAIN else self._tag(item) for item in value]
            if items and items[0].__class__ is str and items[0][:1] == "$":
                items[0] = "$" + items[0]  # a list of the user's that could pass for a tag
            return items
        if kind is tuple:
            return ["$tuple", self._tag(list(value))]
        if kind is datetime:
            return ["$datetime", _encode_datetime(value)]
        if kind is date:
            return ["$date", value.isoformat()]
        if kind is uuid.UUID:
            return ["$uuid", str(value)]
        if kind is Decimal:
            return ["$decimal", str(value)]
        if kind is bytes:
            return ["$bytes", base64.b64encode(value).decode("ascii")]
        if kind is time:
            return ["$time", _encode_time(value)]
        if kind is timedelta:
            return ["$timedelta", [value.days, value.seconds, value.microseconds]]
        return self._tag_subclass(value)

    def _tag_subclass(self, value: Any) -> Any:
        """Tag an instance of a subclass (Markup is a str; a pendulum DateTime a datetime)."""
        markupsafe = sys.modules.get("markupsafe")  # no Markup exists unless it was imported
        if markupsafe is not None and isinstance(value, markupsafe.Markup):
            return ["$markup", str(value)]
        for base, plain in _SUBCLASSES:
            if isinstance(value, base):
                return self._tag(plain(value))
        return value  # not ours to tag: the JSON encoder refuses it with a TypeError

    def _untag(self, value: Any) -> Any:
        """Rebuild the tagged values in *value* (what :meth:`loads` parsed), in place."""
        kind = value.__class__
        if kind is dict:
            for name, item in value.items():
                if item.__class__ is dict or item.__class__ is list:
                    value[name] = self._untag(item)
            return value
        if kind is not list:
            return value
        head = value[0] if value else None
        if head.__class__ is str and head[:1] == "$":
            if head[:2] == "$$":
                value[0] = head[1:]
            elif len(value) == 2 and head in _DECODERS:
                payload = value[1]
                if head == "$tuple":
                    return tuple(self._untag(payload))
                return _DECODERS[head](payload)
        for index, item in enumerate(value):
            if item.__class__ is dict or item.__class__ is list:
                value[index] = self._untag(item)
        return value


#: For an instance of a subclass: the base class it is written as, and how to get one.
#: An IntEnum is written as its int and a str subclass as its text, as JSON itself does.
_SUBCLASSES: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (int, int),
    (float, float),
    (str, str),
    (dict, dict),
    (list, list),
    (tuple, tuple),
    (
        datetime,
        lambda v: datetime(
            v.year,
            v.month,
            v.day,
            v.hour,
            v.minute,
            v.second,
            v.microsecond,
            v.tzinfo,
            fold=v.fold,
        ),
    ),
    (date, lambda v: date(v.year, v.month, v.day)),
    (time, lambda v: time(v.hour, v.minute, v.second, v.microsecond, v.tzinfo, fold=v.fold)),
    (timedelta, lambda v: timedelta(v.days, v.seconds, v.microseconds)),
    (uuid.UUID, lambda v: uuid.UUID(int=v.int)),
    (Decimal, Decimal),
    (bytes, bytes),
)


def value_scanner(
    serializer: Serializer,
) -> tuple[Callable[[str], tuple[Any, int]], str | None] | None:
    """For a store that parses many small values: a JSON serializer's C scanner, and the text
    whose presence means :meth:`loads` must read the value after all (TaggedJSON's tags).

    The scanner returns ``(value, end)``; a value is read when it parsed whole
    (``end == len(text)``) and holds no such text, else ``loads`` gives the verdict. None for
    any other serializer, subclasses included (they may read differently): use its ``loads``.
    """
    kind = type(serializer)
    if kind is JSONSerializer:
        return serializer._decoder.raw_decode, None  # type: ignore[attr-defined]
    if kind is TaggedJSONSerializer:
        return serializer._decoder.raw_decode, '"$'  # type: ignore[attr-defined]
    return None
