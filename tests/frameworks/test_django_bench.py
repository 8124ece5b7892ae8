"""``python -m benchmarks.django_engine`` runs and prints both comparisons (figures not judged)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.frameworks.conftest import need

ROOT = Path(__file__).resolve().parents[2]


def test_the_engine_benchmark_runs(redis_url: str, postgres_dsn: str) -> None:
    """One tiny round on Redis and PostgreSQL: both ratio lines come out, nothing is left."""
    need("django")
    env = {
        **os.environ,
        "WSGISESSION_REDIS_URL": redis_url,
        "WSGISESSION_POSTGRES_DSN": postgres_dsn,
    }
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.django_engine", "--repeats", "1", "--budget", "0.001"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "**wsgisession engine, RedisStore / Django cache engine, RedisCache**",
        "**wsgisession engine, PostgresStore / Django db engine, persistent connections**",
    ):
        assert line in result.stdout, result.stdout
