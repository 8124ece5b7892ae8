"""The command line: ``wsgisession purge|stats [URL]``, ``wsgisession sessions|revoke [URL] USER``.

Also ``python -m wsgisession``. The URL defaults to ``$WSGISESSION_STORE``, as in the examples'
gunicorn configuration. Exit status 0 on success, 1 when the store cannot be used (a missing
SQLite file, a server that cannot be reached), 2 for a usage mistake (no URL, a bad URL, an
option for another store, a missing driver); each error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from . import __version__
from .errors import ConfigurationError, MissingDriverError, StoreError, UserIdError
from .records import check_user_id
from .stores import REDIS_SCHEMES, Store, store_from_url
from .users import DEFAULT_MAX_AGE, StoreUsers, revoke_user, user_sessions

__all__ = ["main"]

#: The environment variable that gives the store URL when the command line leaves it out.
STORE_VARIABLE = "WSGISESSION_STORE"

_URLS = (
    "sqlite:///relative.db, sqlite:////absolute/path.db, redis://host:6379/0, "
    "rediss://…, unix:///path/redis.sock, redis+cluster://host:port,host:port/, "
    "redis+sentinel://host:26379/service or postgresql://user@host:5432/db"
)

_EPILOG = f"""\
The URL may be left out when {STORE_VARIABLE} holds it.

exit status:
  0  done
  1  the store cannot be used: no SQLite file at that path, a server that cannot be
     reached, or a store that cannot run the command
  2  a usage mistake: no URL (and no {STORE_VARIABLE}), a bad URL (or a PostgreSQL URL the
     server refuses), an option for another kind of store, or a missing driver
  3  revoke --handle: no live session of that user has that handle
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgisession",
        description="Look after a wsgisession store: delete expired sessions, count live ones.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    purge = commands.add_parser(
        "purge",
        help="delete the expired sessions and print how many",
        description="Delete every session that has expired and print how many were deleted.\n"
        "Run it from cron for SQLite and PostgreSQL; Redis also expires sessions by itself.\n"
        "On a terminal it shows a running count and rate on stderr; elsewhere it is quiet.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    purge.add_argument(
        "--dry-run",
        action="store_true",
        help="count the expired sessions that would be deleted, and delete nothing",
    )
    stats = commands.add_parser(
        "stats",
        help="print the live session count and their total size",
        description="Print how many sessions are live and how many bytes their data takes.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sessions = commands.add_parser(
        "sessions",
        help="list a user's live sessions",
        description="List the live sessions of USER (bound with session.set_user()), oldest "
        "first:\nhandle, created, last seen (to within touch_interval), expires, and the "
        "client's description.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sessions.add_argument(
        "--max-age",
        type=int,
        default=DEFAULT_MAX_AGE,
        help="the application's max_age in seconds, from which last seen is derived "
        f"(default: {DEFAULT_MAX_AGE})",
    )
    revoke = commands.add_parser(
        "revoke",
        help="end a user's sessions and print how many",
        description="End every live session of USER (after a password reset, say), or with "
        "--handle\nthe one session of USER that `wsgisession sessions` lists with that handle. "
        "Each\nbrowser's next request finds no session.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    revoke.add_argument("--handle", help="end only the session with this handle")
    for command in (purge, stats, sessions, revoke):
        command.add_argument(
            "url", metavar="URL", nargs="?", help=f"the store: {_URLS} (default: ${STORE_VARIABLE})"
        )
        if command in (sessions, revoke):
            command.add_argument("user", metavar="USER", help="the user id, as set_user() got it")
        command.add_argument(
            "--prefix", help="the key prefix of a Redis store (default: wsgisession:)"
        )
        command.add_argument(
            "--table",
            help="the table of an SQLite or PostgreSQL store (default: wsgisession_sessions)",
        )
    return parser


def _store_url(given: str | None) -> str:
    """The URL from the command line, else from the environment; ConfigurationError if neither."""
    url = given if given is not None else os.environ.get(STORE_VARIABLE, "").strip()
    if not url:
        raise ConfigurationError(
            f"no store URL: give one (wsgisession stats sqlite:////var/lib/app/sessions.db) "
            f"or set {STORE_VARIABLE}"
        )
    return url


def _options(url: str, prefix: str | None, table: str | None) -> dict[str, str]:
    """The store options given on the command line, checked against the URL's store."""
    scheme = url.partition("://")[0].lower()
    options = {}
    if prefix is not None:
        if scheme not in REDIS_SCHEMES:
            raise ConfigurationError("--prefix applies to Redis URLs only; drop it or use --table")
        options["prefix"] = prefix
    if table is not None:
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ConfigurationError(
                "--table applies to sqlite:// and postgresql:// URLs only; drop it"
            )
        options["table"] = table
    return options


class _MissingStore(Exception):
    """The URL names a store that is not there (exit status 1)."""


def _check_exists(url: str) -> None:
    """Refuse URLs the command line cannot look into, before a store is built.

    An SQLite path must name an existing file: opening a mistyped one would create an empty
    database and report "0 live sessions". ``memory://`` lives inside one process, so no
    other process can see an application's sessions in it.
    """
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "memory":
        raise ConfigurationError(
            "memory:// keeps sessions inside the application's own process, where the command "
            "line cannot see them; give the application's sqlite://, redis:// or "
            "postgresql:// URL"
        )
    if scheme != "sqlite" or not rest.startswith("/") or rest == "/":
        return  # other stores, or a URL store_from_url() refuses with its own message
    path = rest[1:]
    if path != ":memory:" and not os.path.isfile(path):
        raise _MissingStore(
            f"no SQLite database at {os.path.abspath(path)!r} (nothing was created): check the "
            "path; sqlite:///name.db is relative to the current folder, sqlite:////path/name.db "
            "(four slashes) is absolute"
        )


class _Progress:
    """A running count and rate on one terminal line, redrawn at most every 0.2 seconds."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._start = time.monotonic()
        self._drawn: float | None = None
        self._width = 0  # of the line drawn last, so a shorter one covers it all

    def __call__(self, deleted: int) -> None:
        now = time.monotonic()
        if deleted and (self._drawn is None or now - self._drawn >= 0.2):
            self._draw(deleted, now)

    def _draw(self, deleted: int, now: float) -> None:
        self._drawn = now
        elapsed = now - self._start
        rate = f", {deleted / elapsed:,.0f}/s" if elapsed > 0 else ""
        line = f"purging: {deleted:,} deleted{rate}"
        self._stream.write(f"\r{line.ljust(self._width)}")
        self._width = len(line)
        self._stream.flush()

    def done(self, deleted: int) -> None:
        """Draw the final count and end the line, when anything was drawn."""
        if self._drawn is not None:
            self._draw(deleted, time.monotonic())
            self._stream.write("\n")
            self._stream.flush()


def _sessions(count: int) -> str:
    return f"{count} expired session{'' if count == 1 else 's'}"


def _purge(store: Store, now: float, dry_run: bool) -> None:
    if dry_run:
        print(f"would delete {_sessions(store.count_expired(now))} (dry run: nothing deleted)")
        return
    if sys.stderr.isatty():
        progress = _Progress(sys.stderr)
        deleted = store.purge(now, progress)
        progress.done(deleted)
    else:
        deleted = store.purge(now)
    print(f"deleted {_sessions(deleted)}")


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _list_sessions(store: Store, user: str, now: float, max_age: int) -> None:
    if max_age <= 0:
        raise ConfigurationError(f"--max-age {max_age} must be a positive number of seconds")
    infos = user_sessions(store, user, max_age=max_age, now=now)
    count = f"{len(infos)} live session{'' if len(infos) == 1 else 's'}"
    print(f"{count} of user {user!r}")
    for info in infos:
        fields = [
            info.handle,
            f"created {_time(info.created)}",
            f"last seen {_time(info.last_seen)}",
            f"expires {_time(info.expires)}",
        ]
        if info.info:
            fields.append(json.dumps(info.info, ensure_ascii=False, sort_keys=True))
        print("  ".join(fields))


def _revoke(store: Store, user: str, now: float, handle: str | None) -> int:
    check_user_id(user, "revoke")
    if handle is None:
        ended = revoke_user(store, user, now=now)
        print(f"ended {ended} session{'' if ended == 1 else 's'} of user {user!r}")
        return 0
    if StoreUsers(store, lambda: now, DEFAULT_MAX_AGE).revoke(user, handle):
        print(f"ended 1 session of user {user!r}")
        return 0
    return _fail(
        f"no live session of user {user!r} has the handle {handle!r}; nothing was ended "
        "(list them with wsgisession sessions)",
        3,
    )


def _fail(message: str, status: int) -> int:
    print(f"wsgisession: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (``sys.argv[1:]`` by default); return the exit status."""
    args = _parser().parse_args(argv)
    # The pool's own retries would print a warning each; the one line below says it all.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    if getattr(args, "user", None) == "":
        return _fail("USER is empty; give the user id as the application's set_user() got it", 2)
    try:
        url = _store_url(args.url)
        options = _options(url, args.prefix, args.table)
        _check_exists(url)
        # A server that cannot be reached is one error line below, not also the store's
        # warning that it will connect on first use.
        quiet = logging.getLogger("wsgisession.store")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            store: Store = store_from_url(url, **options)
        finally:
            quiet.setLevel(level)
    except (ConfigurationError, MissingDriverError) as exc:
        return _fail(str(exc), 2)
    except _MissingStore as exc:
        return _fail(str(exc), 1)
    except StoreError as exc:  # a cluster URL connects at once to discover its nodes
        return _fail(str(exc).splitlines()[0], 1)
    now = time.time()
    try:
        with store:
            if args.command == "purge":
                _purge(store, now, args.dry_run)
            elif args.command == "sessions":
                _list_sessions(store, args.user, now, args.max_age)
            elif args.command == "revoke":
                return _revoke(store, args.user, now, args.handle)
            else:
                stats = store.stats(now)
                print(
                    f"{stats.sessions} live session{'' if stats.sessions == 1 else 's'}, "
                    f"{stats.size_bytes} bytes"
                )
    except (UserIdError, ConfigurationError) as exc:
        return _fail(str(exc), 2)
    except NotImplementedError as exc:
        return _fail(str(exc), 1)
    except StoreError as exc:
        return _fail(str(exc).splitlines()[0], 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
