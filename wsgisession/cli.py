"""The command line: ``wsgisession purge URL`` and ``wsgisession stats URL``.

Also ``python -m wsgisession``. A bad URL or a missing driver is one line on stderr and exit
status 2; a store that cannot be reached is one line and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from .errors import ConfigurationError, MissingDriverError, StoreError
from .stores import REDIS_SCHEMES, Store, store_from_url

__all__ = ["main"]

_URLS = (
    "memory://, sqlite:///relative.db, sqlite:////absolute/path.db, redis://host:6379/0, "
    "rediss://…, unix:///path/redis.sock, redis+cluster://host:port,host:port/, "
    "redis+sentinel://host:26379/service or postgresql://user@host:5432/db"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgisession",
        description="Look after a wsgisession store: delete expired sessions, count live ones.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    purge = commands.add_parser(
        "purge",
        help="delete the expired sessions and print how many",
        description="Delete every session that has expired and print how many were deleted. "
        "Run it from cron for SQLite and PostgreSQL; Redis also expires sessions by itself.",
    )
    stats = commands.add_parser(
        "stats",
        help="print the live session count and their total size",
        description="Print how many sessions are live and how many bytes their data takes.",
    )
    for command in (purge, stats):
        command.add_argument("url", metavar="URL", help=f"the store: {_URLS}")
        command.add_argument(
            "--prefix", help="the key prefix of a Redis store (default: wsgisession:)"
        )
        command.add_argument(
            "--table",
            help="the table of an SQLite or PostgreSQL store (default: wsgisession_sessions)",
        )
    return parser


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


def _fail(message: str, status: int) -> int:
    print(f"wsgisession: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (``sys.argv[1:]`` by default); return the exit status."""
    args = _parser().parse_args(argv)
    # The pool's own retries would print a warning each; the one line below says it all.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    try:
        store: Store = store_from_url(args.url, **_options(args.url, args.prefix, args.table))
    except (ConfigurationError, MissingDriverError) as exc:
        return _fail(str(exc), 2)
    except StoreError as exc:  # a cluster URL connects at once to discover its nodes
        return _fail(str(exc).splitlines()[0], 1)
    now = time.time()
    try:
        with store:
            if args.command == "purge":
                deleted = store.purge(now)
                print(f"deleted {deleted} expired session{'' if deleted == 1 else 's'}")
            else:
                try:
                    stats = store.stats(now)
                except NotImplementedError as exc:
                    return _fail(str(exc), 1)
                print(
                    f"{stats.sessions} live session{'' if stats.sessions == 1 else 's'}, "
                    f"{stats.size_bytes} bytes"
                )
    except StoreError as exc:
        return _fail(str(exc).splitlines()[0], 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
