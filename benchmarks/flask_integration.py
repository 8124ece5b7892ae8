"""``python -m benchmarks.flask_integration``: wsgisession as Flask's session, beside Flask's own.

One run, in-process, the same Flask app and scenarios as ``make bench``: Flask's signed-cookie
session, Flask-Session on Redis, and wsgisession's Flask integration on memory, SQLite and
Redis. The repeats are interleaved (every contender once per round), so a busy machine slows
them alike. It prints the median µs per request over Flask's own cost (Flask with no session)
and the ratios of wsgisession's Flask integration to the nearest alternative (below 1 is
faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

from .__main__ import machine
from .contenders import Contender, Context, build, environ_for, missing
from .inprocess import Results, Row, Timing, app_batch, scenario_environs

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


def report(results: Results) -> str:
    """The over-Flask table and the ratio table, Markdown."""
    flask_own = results.median("flask:bare", "bare") or 0.0
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
        cells = [f"+{row.timings[s].median - flask_own:.1f}" for s in SCENARIOS]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines += ["", "| wsgisession / alternative | " + " | ".join(SCENARIOS) + " |"]
    lines.append("|---|" + "---:|" * len(SCENARIOS))
    for ours, theirs in PAIRS:
        if results.row(ours) is None or results.row(theirs) is None:
            continue
        cells = []
        for scenario in SCENARIOS:
            mine = results.median(ours, scenario)
            other = results.median(theirs, scenario)
            cells.append("—" if not mine or not other else f"{mine / other:.2f}")
        lines.append(f"| {ours} / {theirs} | " + " | ".join(cells) + " |")
    lines += ["", "Whole-request medians (Flask included) in the ratios; below 1 is faster."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flask_integration")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per figure (7)")
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per repeat (0.05)")
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
                batches[name, scenario] = app_batch(contender.app, environ)
        interleaved(batches, args.repeats, args.budget, results)
        print(report(results))
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
