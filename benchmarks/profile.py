"""cProfile of wsgisession's hot path: one store, one scenario, many requests."""

from __future__ import annotations

import cProfile
import pstats

from .contenders import Context, build
from .inprocess import app_batch, scenario_environs


def profile(ctx: Context, store: str, scenario: str, requests: int = 20000) -> None:
    """Print the top functions by own time for *scenario* on wsgisession's *store*."""
    contender = build(f"wsgisession:{store}", ctx)
    try:
        environ = scenario_environs(contender)[scenario]
        batch = app_batch(contender.app, environ)
        batch(100)
        profiler = cProfile.Profile()
        profiler.enable()
        batch(requests)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
    finally:
        contender.close()
