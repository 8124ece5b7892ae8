"""What the framework integrations share: the store argument and errors that name their source.

A framework reads wsgisession's options from its own configuration (Flask's ``app.config``,
Pyramid's ``.ini`` settings). When the core refuses a value, the error must name the setting
the user wrote, not only the option it became; :func:`build_core` does that.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..core import SessionCore
from ..errors import ConfigurationError
from ..serializers import Serializer
from ..session import Session
from ..stores import ClientSideStore, MemoryStore, Store, store_from_url

__all__ = ["OPTION_NAMES", "build_core", "resolve_store"]

#: The keyword options of the core: those of SessionMiddleware but what belongs to WSGI.
OPTION_NAMES: frozenset[str] = frozenset(
    name
    for name, parameter in inspect.signature(SessionCore).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


def check_names(options: Mapping[str, Any], where: str) -> None:
    """Refuse option names the core does not have, as a TypeError naming them."""
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise TypeError(
            f"{where} got unknown option(s) {', '.join(unknown)}; the options are "
            f"{', '.join(sorted(OPTION_NAMES))}"
        )


def resolve_store(
    store: Store | ClientSideStore | str | None,
    serializer: Callable[[], Serializer] | None,
    source: str,
) -> Store | ClientSideStore:
    """Return *store*, the store its URL names, or a new MemoryStore for None.

    A store built here gets ``serializer()`` (when given); a ready store keeps its own.
    *source* names where the value came from, for the error message.
    """
    options: dict[str, Any] = {} if serializer is None else {"serializer": serializer()}
    if store is None:
        return MemoryStore(**options)
    if isinstance(store, (Store, ClientSideStore)):
        return store
    if isinstance(store, str):
        try:
            return store_from_url(store, **options)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{source} = {store!r}: {exc}") from exc
    raise ConfigurationError(
        f"{source} = {store!r} is not a wsgisession Store or a store URL; pass MemoryStore(), "
        "SqliteStore(path), RedisStore(url), PostgresStore(dsn), CookieStore() or a URL such as "
        "'sqlite:///sessions.db' or 'redis://localhost:6379/0'"
    )


def build_core(
    store: Store | ClientSideStore,
    session_class: type[Session],
    options: Mapping[str, Any],
    sources: Mapping[str, str],
) -> SessionCore:
    """Build the core; a refused value is reported under the setting it came from.

    *sources* maps an option to the setting that supplied it (``"app.config['SECRET_KEY']"``);
    options passed in code have no entry and are reported as the option itself.
    """
    try:
        return SessionCore(store, session_class=session_class, **options)
    except (ConfigurationError, TypeError, ValueError) as exc:
        message = str(exc)
        named = [
            source
            for option, source in sources.items()
            if re.search(rf"\b{re.escape(option)}\b", message)
        ]
        if not named:
            raise
        raise ConfigurationError(f"{', '.join(named)}: {message}") from exc
