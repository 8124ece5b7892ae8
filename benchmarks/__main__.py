"""``python -m benchmarks``: run the benchmarks, print the tables and the targets' PASS/MISS.

python -m benchmarks                 # in-process, floors, HTTP, callgrind, chart, targets
python -m benchmarks --no-http       # in-process and floors only (and the targets' callgrind)
python -m benchmarks --callgrind     # instructions per request of every contender, scenario
python -m benchmarks --scale         # 1k/100k/1M sessions, flood, purge (make bench-scale)
python -m benchmarks --profile write # cProfile of wsgisession's hot path for one scenario
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from . import inprocess
from .contenders import Context


def machine() -> str:
    """One line that says what the figures were measured on."""
    import os

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for dist in ("WebOb", "Beaker", "Flask", "Flask-Session", "redis", "psycopg", "gunicorn"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            pass
    import sqlite3

    return (
        f"{os.cpu_count()} vCPU {cpu}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, " + ", ".join(versions)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn runs")
    parser.add_argument("--http-only", action="store_true", help="only the gunicorn runs")
    parser.add_argument("--scale", action="store_true", help="run the scale benchmarks instead")
    parser.add_argument("--scale-max", type=int, default=1_000_000, help="largest population")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per figure (7)")
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per repeat (0.05)")
    parser.add_argument("--duration", type=int, default=3, help="seconds per HTTP run (3)")
    parser.add_argument(
        "--only", nargs="*", help="contenders to run, in-process and HTTP (bare always runs)"
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="only count instructions per request (valgrind) of every contender and scenario",
    )
    parser.add_argument(
        "--no-callgrind", action="store_true", help="skip the targets' instruction counts"
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per callgrind child (300)"
    )
    parser.add_argument(
        "--scenarios",
        nargs="*",
        help="scenarios for --callgrind (all by default; bound-read and bound-write run on the "
        "wsgisession stores only)",
    )
    parser.add_argument(
        "--chart",
        default=None,
        help="where to write the ratio chart (docs/_static/bench-ratios.png); '' for none",
    )
    parser.add_argument("--profile", metavar="SCENARIO", help="profile wsgisession on a scenario")
    parser.add_argument("--store", default="memory", help="store for --profile (memory)")
    args = parser.parse_args(argv)

    started = time.time()
    print(f"machine: {machine()}")
    ctx = Context()
    try:
        if args.profile:
            from .profile import profile

            profile(ctx, args.store, args.profile)
            return 0
        if args.scale:
            from . import scale

            scale.run(ctx, largest=args.scale_max)
            return 0
        if args.callgrind:
            from . import callgrind

            names = args.only or inprocess.CONTENDERS
            scenarios = args.scenarios or list(callgrind.SCENARIOS)
            counts = callgrind.run(ctx, {n: list(scenarios) for n in names}, requests=args.requests)
            print(f"\nmachine: {machine()}")
            print("\n## Instructions per request (callgrind)\n")
            print(callgrind.table(counts))
            if callgrind.has_bound(counts):
                print("\n## Bound to a user against unbound (callgrind)\n")
                print(callgrind.bound_table(counts))
            print("\nCommands:")
            for command in counts.commands:
                print(f"  {command}")
            print(f"\n(finished in {time.time() - started:.0f} s)")
            return 0
        results = None
        if not args.http_only:
            results = inprocess.run(
                ctx, repeats=args.repeats, budget=args.budget, contenders=args.only
            )
        http_results = None
        if not args.no_http:
            from . import http

            http_results = http.run(ctx, duration=args.duration, contenders=args.only)
        counts = None
        if not args.no_callgrind and not args.http_only:
            from . import callgrind

            runs = {
                name: scenarios
                for name, scenarios in callgrind.TARGET_RUNS.items()
                if not args.only or name in args.only or name == "floor:sqlite"
            }
            counts = callgrind.run(ctx, runs, requests=args.requests)
        chart_path = None
        if results is not None and args.chart != "":
            from . import chart

            chart_path = chart.write(
                results,
                args.chart or chart.DEFAULT_PATH,
                subtitle=f"{time.strftime('%Y-%m-%d')}: {machine()}",
            )
        print()
        print(f"machine: {machine()}")
        if results is not None:
            print("\n## In-process\n")
            print(inprocess.table(results))
            print("\n## Bound to a user against unbound (wsgisession)\n")
            print(inprocess.bound_table(results))
            print("\n## Store calls per request (wsgisession)\n")
            print(inprocess.calls_table(results))
            print("\n## Ratio wsgisession / peer (median µs; below 1 is faster)\n")
            print(inprocess.ratio_table(results))
            print("\n## Floors\n")
            print(inprocess.floors_table(results))
        if http_results is not None:
            from . import http

            print("\n## HTTP (gunicorn sync, 2 workers, wrk on the same machine)\n")
            print(http.table(http_results, "sync"))
            print("\n## HTTP keep-alive (gunicorn gthread, 2 workers x 4 threads, wrk)\n")
            print(http.table(http_results, "keep-alive"))
        if counts is not None:
            from . import callgrind

            print("\n## Instructions per request (callgrind)\n")
            print(callgrind.table(counts))
            if callgrind.has_bound(counts):
                print("\n## Bound to a user against unbound (callgrind)\n")
                print(callgrind.bound_table(counts))
        if chart_path is not None:
            print(f"\nChart of the ratios: {chart_path}")
        from .targets import check

        print("\n## Targets\n")
        print(check(results, http_results, counts))
        print(f"\n(finished in {time.time() - started:.0f} s)")
    finally:
        ctx.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
