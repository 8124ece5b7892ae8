"""How session values become text for a store: JSON by default, never pickle.

A serializer turns one value into a ``str`` and back. JSON is the default because it cannot
run code when it is read back: a leaked store or key never becomes remote code execution.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

__all__ = ["JSONSerializer", "Serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Turns values into text and back; ``dumps`` raises TypeError or ValueError for a bad value."""

    def dumps(self, value: Any) -> str:
        """Return *value* as text; raise TypeError/ValueError when it cannot be held."""
        ...

    def loads(self, data: str | bytes) -> Any:
        """Return the value that :meth:`dumps` turned into *data*; raise ValueError when corrupt."""
        ...


class JSONSerializer:
    """Compact, strict JSON: no NaN or Infinity, UTF-8 text kept as is."""

    __slots__ = ("_encoder", "_decoder")

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=True
        )
        self._decoder = json.JSONDecoder()

    def dumps(self, value: Any) -> str:
        """Return *value* as compact JSON text; text that UTF-8 cannot hold raises ValueError."""
        kind = value.__class__
        if kind is int:
            return int.__repr__(value)  # what the encoder writes, without building one per call
        if kind is bool:
            return "true" if value else "false"
        if value is None:
            return "null"
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
        return self._decoder.decode(data)
