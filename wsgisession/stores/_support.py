"""Plumbing the stores share: driver imports, SQL names, fork safety, corrupt-record warnings.

Private to :mod:`wsgisession.stores`; a store written outside the package subclasses
:class:`~wsgisession.stores.base.Store` and needs none of this.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import weakref
from importlib import resources
from types import ModuleType
from typing import Any, Protocol

from ..errors import ConfigurationError, MissingDriverError
from ..signing import log_id

logger = logging.getLogger("wsgisession.store")

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SCHEMA_NAME = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}")


def import_driver(store: str, driver: str, extra: str, *modules: str) -> list[ModuleType]:
    """Import a store's driver *modules*, or raise MissingDriverError naming the extra to install.

    :param store: the store's class name, for the message.
    :param driver: what the modules are called in words ("the redis-py driver").
    :param extra: the ``sessions-wsgi[extra]`` that installs them.
    """
    try:
        return [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        raise MissingDriverError(
            f"{store} needs {driver}: pip install 'sessions-wsgi[{extra}]'"
        ) from exc


_PASSWORD_PARAMETER = re.compile(r"(?i)((?:^|[?&;])[^=&;?#]*password=)[^&;#]*")


def redact_url(url: str) -> str:
    """*url* with its userinfo's password and any ``password`` parameter shown as ``***``.

    For error messages about a store URL: they must say which URL is wrong without handing its
    password to a log or an error tracker. Works on malformed URLs too (that is when it is used).
    """
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    userinfo, at, tail = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{tail}" if colon else f"***@{tail}"
    return head + sep + _PASSWORD_PARAMETER.sub(r"\1***", rest)


def check_sql_name(table: str, *, schema: bool = False) -> str:
    """Return *table* when it is a plain SQL name (``schema.table`` too with *schema*).

    The name is put into statements, so anything else is refused at construction.
    """
    pattern = _SCHEMA_NAME if schema else _PLAIN_NAME
    if not pattern.fullmatch(table):
        also = ", optionally as schema.table" if schema else ""
        raise ConfigurationError(
            f"table={table!r} is not a plain SQL name; use letters, digits and underscores{also}"
        )
    return table


class _ForkAware(Protocol):
    def _reset_after_fork(self) -> None: ...


def reset_after_fork(store: _ForkAware) -> None:
    """Have *store* call its ``_reset_after_fork()`` in every child process forked after now.

    The store is held weakly, so registering it keeps no closed store alive. A child must never
    use the connections it inherited: they belong to the parent (gunicorn ``--preload``).
    """
    ref = weakref.ref(store)
    os.register_at_fork(after_in_child=lambda: _after_fork(ref))


def _after_fork(ref: weakref.ReferenceType[Any]) -> None:
    store = ref()
    if store is not None:
        store._reset_after_fork()


def warn_corrupt(key: str, what: str = "is corrupt") -> None:
    """Log that the record under *key* could not be read (by its hashed prefix only)."""
    logger.warning(
        "session %s: stored record %s and was ignored; a fresh session starts", log_id(key), what
    )


@functools.cache
def read_text(name: str) -> str:
    """Return the text of a file shipped beside the stores (a Lua script, the SQL statements).

    Read when the first store that needs it is built, not when its module is imported.
    """
    return resources.files("wsgisession.stores").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def sql_statements(name: str) -> dict[str, str]:
    """Read the statements of an SQL file, each under a ``-- name: <name>`` line.

    Comment lines are dropped, so what remains of each is the statement itself.
    """
    statements: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in read_text(name).splitlines():
        stripped = line.strip()
        if stripped.startswith("-- name:"):
            current = statements.setdefault(stripped.removeprefix("-- name:").strip(), [])
        elif current is not None and stripped and not stripped.startswith("--"):
            current.append(stripped)
    return {key: " ".join(lines) for key, lines in statements.items()}
