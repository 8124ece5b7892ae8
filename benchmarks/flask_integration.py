"""``python -m benchmarks.flask_integration``: wsgisession as Flask's session, beside Flask's own.

One run, in-process, the same Flask app and scenarios as ``make bench``: Flask's signed-cookie
session, Flask-Session on Redis, and wsgisession's Flask integration on memory, SQLite and
Redis. The repeats are interleaved (every contender once per round), so a busy machine slows
them alike, and each figure is the best round's µs per request (``--median`` for the median):
on a shared machine the best round is the one least disturbed by other load. It prints the
figures over Flask's own cost (Flask with no session) and the ratios of wsgisession's Flask
integration to the nearest alternative (below 1 is faster).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .__main__ import machine
from .contenders import Contender, Context, build, environ_for, missing
from .inprocess import Results, Row, Timing, app_batch, scenario_environs

if TYPE_CHECKING:
    from .contenders import Environ, WSGIApp

CONTENDERS = [
    "flask:cookie",
    "flask:redis",
    "flask:wsgisession-memory",
    "flask:wsgisession-sqlite",
    "flask:wsgisession-redis",
]
SCENARIOS = ["untouched", "new-write", "read", "write", "forged"]
#: Each wsgisession contender and the alternative a Flask user would otherwise pick.
PAIRS = [
    ("flask:wsgisession-memory", "flask:cookie"),
    ("flask:wsgisession-sqlite", "flask:cookie"),
    ("flask:wsgisession-redis", "flask:redis"),
]


def cpu_batch(app: WSGIApp, environ: Environ) -> Callable[[int], float]:
    """Like :func:`benchmarks.inprocess.app_batch`, timed in this process's CPU seconds.

    Other processes on a busy machine then count for little; time spent waiting for Redis,
    and the Redis server's own CPU, are not counted at all.
    """

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        return None

    def batch(n: int) -> float:
        environs = [dict(environ) for _ in range(n)]
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            for env in environs:
                result = app(env, start_response)
                if result.__class__ is not list:
                    for _ in result:
                        pass
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            return time.process_time() - start
        finally:
            gc.enable()

    return batch


def report(results: Results, median: bool = False) -> str:
    """The over-Flask table and the ratio table, Markdown (best rounds, or medians)."""

    def figure(name: str, scenario: str) -> float | None:
        row = results.row(name)
        timing = row.timings.get(scenario) if row is not None else None
        if timing is None:
            return None
        return timing.median if median else timing.low

    flask_own = figure("flask:bare", "bare") or 0.0
    lines = [
        f"Flask's own cost (no session): {flask_own:.1f} µs; figures below are over it.",
        "",
        "| contender | " + " | ".join(SCENARIOS) + " |",
        "|---|" + "---:|" * len(SCENARIOS),
    ]
    for row in results.rows:
        if row.family != "flask" or row.name == "flask:bare":
            continue
        if row.skipped:
            lines.append(f"| {row.label} | skipped: {row.skipped} |" + " |" * (len(SCENARIOS) - 1))
            continue
        cells = [f"+{(figure(row.name, s) or 0.0) - flask_own:.1f}" for s in SCENARIOS]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines += ["", "| wsgisession / alternative | " + " | ".join(SCENARIOS) + " |"]
    lines.append("|---|" + "---:|" * len(SCENARIOS))
    for ours, theirs in PAIRS:
        if results.row(ours) is None or results.row(theirs) is None:
            continue
        cells = []
        for scenario in SCENARIOS:
            mine = figure(ours, scenario)
            other = figure(theirs, scenario)
            cells.append("—" if not mine or not other else f"{mine / other:.2f}")
        lines.append(f"| {ours} / {theirs} | " + " | ".join(cells) + " |")
    kind = "medians" if median else "best rounds"
    lines += ["", f"Ratios of whole-request {kind} (Flask included); below 1 is faster."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flask_integration")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per figure (7)")
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per repeat (0.05)")
    parser.add_argument("--median", action="store_true", help="medians, not the best rounds")
    parser.add_argument(
        "--cpu", action="store_true", help="this process's CPU time (Redis waits not counted)"
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    ctx = Context()
    contenders: list[Contender] = []
    try:
        results = Results()
        batches: dict[tuple[str, str], Callable[[int], float]] = {}
        for name in ["flask:bare", *CONTENDERS]:
            reason = missing(name)
            if reason is not None:
                results.rows.append(Row(name, name, "flask", skipped=reason))
                continue
            contender = build(name, ctx)
            contenders.append(contender)
            results.rows.append(Row(name, contender.label, "flask"))
            if name == "flask:bare":
                environs = {"bare": environ_for("/untouched")}
            else:
                environs = {s: e for s, e in scenario_environs(contender).items() if s in SCENARIOS}
            for scenario, environ in environs.items():
                timer = cpu_batch if args.cpu else app_batch
                batches[name, scenario] = timer(contender.app, environ)
        interleaved(batches, args.repeats, args.budget, results)
        print(report(results, median=args.median))
    finally:
        for contender in contenders:
            contender.close()
        ctx.cleanup()
    return 0


def interleaved(
    batches: dict[tuple[str, str], Callable[[int], float]],
    repeats: int,
    budget: float,
    results: Results,
) -> None:
    """Time every (contender, scenario) batch once per round, *repeats* rounds; fill the rows."""
    sizes = {}
    for key, batch in batches.items():
        batch(5)  # warm up
        probe = max(batch(20) / 20, 1e-8)
        sizes[key] = int(min(max(budget / probe, 20), 20000))
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in batches}
    for round_ in range(repeats):
        print(f"round {round_ + 1}/{repeats}")
        for key, batch in batches.items():
            samples[key].append(batch(sizes[key]) / sizes[key] * 1e6)
    rows = {row.name: row for row in results.rows}
    for (name, scenario), values in samples.items():
        rows[name].timings[scenario] = Timing(
            statistics.median(values), min(values), max(values), sizes[name, scenario]
        )


if __name__ == "__main__":
    sys.exit(main())
