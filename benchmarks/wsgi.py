"""The gunicorn entry point of the HTTP benchmark: ``benchmarks.wsgi:application``.

The contender comes from ``BENCH_CONTENDER`` and the shared run folder and key prefix from
``BENCH_ROOT`` / ``BENCH_TOKEN``. With ``BENCH_COOKIES_FILE`` set (and ``--preload``), the
master makes one session per connection before forking, so even per-process memory stores
know every session in both workers.
"""

from __future__ import annotations

import os

from .contenders import Context, build, session_cookie

_contender = build(os.environ["BENCH_CONTENDER"], Context.from_env())
application = _contender.app

_cookies_file = os.environ.get("BENCH_COOKIES_FILE")
if _cookies_file:
    count = int(os.environ.get("BENCH_CONNECTIONS", "4"))
    cookies = [session_cookie(application, "/setup") for _ in range(count)]
    with open(_cookies_file, "w", encoding="utf-8") as out:
        out.write("\n".join(cookies))
