"""Instructions per request, counted by callgrind: figures a busy, shared machine cannot blur.

For each contender and scenario, a child process builds the contender, makes its session,
warms every scenario up, copies *N* environs and then serves *N* requests of one scenario, all
under ``valgrind --tool=callgrind``; a baseline child does the same but serves 0 requests. The
difference of their instruction counts, divided by *N*, is what one request costs the Python
process (a
Redis or PostgreSQL server's own work is in another process and not counted; waiting costs
no instructions). Deterministic to a fraction of a percent, so a regression shows on any
machine.

``python -m benchmarks --callgrind`` runs every contender (``--only`` narrows it);
``make bench`` runs the few the targets need (:data:`TARGET_RUNS`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .contenders import Context, Environ, build, missing

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["untouched", "new-write", "read", "write", "forged", "bound-read", "bound-write"]
#: Each scenario of a session bound to a user, and its unbound twin (wsgisession stores only).
BOUND = {"bound-read": "read", "bound-write": "write"}
#: Requests per measured child.
REQUESTS = 300
#: What ``make bench`` counts: the targets' instruction lines and wsgisession's stores, with
#: each store's write of a session bound to a user beside it.
TARGET_RUNS: dict[str, list[str]] = {
    "floor:sqlite": ["write"],
    "wsgisession:memory": ["write", "bound-write"],
    "wsgisession:sqlite": ["write", "bound-write"],
    "wsgisession:redis": ["write", "bound-write"],
    "wsgisession:postgres": ["write", "bound-write"],
}
_SUMMARY = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


@dataclass
class Counts:
    """Instructions per request of each contender and scenario, and what was skipped."""

    #: contender → scenario → instructions per request.
    per_request: dict[str, dict[str, float]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    requests: int = REQUESTS
    commands: list[str] = field(default_factory=list)

    def get(self, name: str, scenario: str) -> float | None:
        return self.per_request.get(name, {}).get(scenario)


def available() -> str | None:
    """None when valgrind can run, else why not."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind)"
    return None


def _child(
    ctx: Context, name: str, scenario: str, requests: int, out_dir: str, serve: bool = True
) -> tuple[int, str]:
    """Run one child under callgrind; return its instruction count and command.

    With *serve* false it is the baseline: everything but the requests themselves.
    """
    stem = f"{name.replace(':', '-')}-{scenario}-{requests if serve else 0}"
    out = os.path.join(out_dir, f"{stem}.out")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "benchmarks.callgrind",
        "--worker",
        name,
        scenario,
        str(requests),
        *([] if serve else ["--baseline"]),
    ]
    env = dict(os.environ, **ctx.env(), PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(command[4:])} failed: " + " | ".join(tail))
    match = _SUMMARY.search(Path(out).read_bytes())
    if match is None:
        raise RuntimeError(f"callgrind wrote no summary to {out}")
    return int(match.group(1)), " ".join([*command[:1], "--tool=callgrind", *command[3:]])


def run(
    ctx: Context,
    runs: dict[str, list[str]],
    *,
    requests: int = REQUESTS,
    jobs: int = 2,
    log: Callable[[str], None] = print,
) -> Counts:
    """Count the instructions per request of each contender's scenarios in *runs*."""
    counts = Counts(requests=requests)
    reason = available()
    if reason is not None:
        counts.skipped = dict.fromkeys(runs, reason)
        log(f"callgrind: skipped ({reason})")
        return counts
    out_dir = tempfile.mkdtemp(prefix="callgrind-", dir=ctx.root)

    def one(name: str) -> None:
        reason = missing(name)
        if reason is not None:
            counts.skipped[name] = reason
            log(f"callgrind {name}: skipped ({reason})")
            return
        try:
            contender = build(name, ctx)
            counts.labels[name] = contender.label
            contender.close()
            # A peer cannot bind a session to a user: it runs its other scenarios only.
            scenarios = [s for s in runs[name] if contender.binds or s not in BOUND]
            if not scenarios:
                counts.skipped[name] = "no user binding, so no bound scenario"
                log(f"callgrind {name}: skipped (no user binding, so no bound scenario)")
                return
            # The baseline: the same child with no request measured; each scenario after it.
            baseline, _ = _child(ctx, name, scenarios[0], requests, out_dir, serve=False)
            for scenario in scenarios:
                total, command = _child(ctx, name, scenario, requests, out_dir)
                value = (total - baseline) / requests
                counts.per_request.setdefault(name, {})[scenario] = value
                counts.commands.append(command)
                log(f"callgrind {name} {scenario}: {value:,.0f} instructions per request")
        except RuntimeError as exc:
            counts.skipped[name] = str(exc)
            log(f"callgrind {name}: failed ({exc})")

    # Django is configured once per process and migrates its table at start: the Django
    # contenders go one after another, after the others.
    names = [n for n in runs if not n.startswith("django:")]
    django = [n for n in runs if n.startswith("django:")]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, names))
    for name in django:
        one(name)
    return counts


def table(counts: Counts) -> str:
    """Instructions per request, Markdown, one row per contender."""
    scenarios = [s for s in SCENARIOS if any(s in v for v in counts.per_request.values())]
    lines = [
        "| contender | " + " | ".join(scenarios) + " |",
        "|---|" + "---:|" * len(scenarios),
    ]
    for name, values in counts.per_request.items():
        cells = [f"{values[s]:,.0f}" if s in values else "—" for s in scenarios]
        lines.append(f"| {counts.labels.get(name, name)} | " + " | ".join(cells) + " |")
    for name, reason in counts.skipped.items():
        lines.append(f"| {name} | skipped: {reason} |" + " |" * (len(scenarios) - 1))
    lines.append("")
    lines.append(
        f"Instructions per request in the Python process (callgrind; {counts.requests} requests "
        "less a 0-request baseline, divided by the requests). Reproduce one figure with: "
        "valgrind --tool=callgrind python -m benchmarks.callgrind --worker CONTENDER SCENARIO N, "
        "less the same with --baseline."
    )
    return "\n".join(lines)


def has_bound(counts: Counts) -> bool:
    """True when some contender has a bound scenario and its unbound twin counted."""
    return any(b in v and u in v for v in counts.per_request.values() for b, u in BOUND.items())


def bound_table(counts: Counts) -> str:
    """Instructions per request of each bound scenario beside its unbound twin, and the ratio."""
    pairs = [
        (b, u)
        for b, u in BOUND.items()
        if any(b in v and u in v for v in counts.per_request.values())
    ]
    lines = ["| store | " + " | ".join(f"{u} | {b} | {b} / {u}" for b, u in pairs) + " |"]
    lines.append("|---|" + "---:|" * 3 * len(pairs))
    for name, values in counts.per_request.items():
        if not any(b in values for b, _ in pairs):
            continue
        cells = []
        for bound, unbound in pairs:
            a, b = values.get(bound), values.get(unbound)
            cells += [f"{v:,.0f}" if v is not None else "—" for v in (b, a)]
            cells.append(f"{a / b:.3f}x" if a is not None and b else "—")
        lines.append(f"| {counts.labels.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def worker(name: str, scenario: str, requests: int, serve: bool = True) -> None:
    """The measured child: build *name*, warm every scenario up, serve *requests* of one.

    The baseline (*serve* false) makes the same environ copies and collects the garbage the
    same way, so the difference is the requests alone.
    """
    from .inprocess import app_batch, scenario_environs

    ctx = Context.from_env()
    contender = build(name, ctx)
    try:
        if contender.enter is not None:
            contender.enter()
        environs = scenario_environs(contender)
        for environ in environs.values():
            app_batch(contender.app, environ)(20)
        app = contender.app if serve else _nothing
        app_batch(app, environs[scenario])(requests)
        if contender.leave is not None:
            contender.leave()
    finally:
        contender.close()
        for close in ctx.closers:
            close()


def _nothing(environ: Environ, start_response: Callable[..., object]) -> list[bytes]:
    """The baseline's stand-in for the app: a call and an empty body, nearly no work."""
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind")
    parser.add_argument("--worker", nargs=3, metavar=("CONTENDER", "SCENARIO", "N"), required=True)
    parser.add_argument("--baseline", action="store_true", help="all but the requests")
    args = parser.parse_args(argv)
    name, scenario, requests = args.worker
    worker(name, scenario, int(requests), serve=not args.baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
