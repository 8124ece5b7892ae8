"""Released source distributions of other projects, fetched at test time for their own test suites.

Django's ``sessions_tests`` and Flask-Login's tests run against wsgisession, but they are never
part of this repository: pip downloads the installed version's sdist into a cache folder outside
git (``$XDG_CACHE_HOME/wsgisession/sdists``, else ``~/.cache/...``) and the wanted members are
unpacked there once. Several test runs may share the cache, so each unpacks into a private
folder and renames it into place; a run that loses the race uses the winner's copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.support.servers import missing

__all__ = ["released_source"]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "wsgisession" / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pip_error(stderr: str) -> str:
    """pip's own error, without the index-location warnings this machine's pip prints first."""
    lines = [line for line in stderr.splitlines() if "is ignored: it is neither" not in line]
    return "\n".join(lines)[-800:] or "(pip printed nothing else)"


def released_source(project: str, version: str, wanted: Callable[[str], bool], marker: str) -> Path:
    """The unpacked members of *project*'s sdist for which *wanted(path)* holds, cached.

    *path* is a member's name without the ``project-version/`` prefix; *marker* is a file that
    exists once the unpacking is complete (checked before anything is downloaded). A failed
    download skips the test, or fails it under ``CI=true``.
    """
    cache = _cache_dir()
    folder = cache / f"{project.lower()}-{version}"
    if (folder / marker).exists():
        return folder
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{project.lower()}-") as work:
        download = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-binary", ":all:"),
                *("--no-deps", "--quiet", f"{project}=={version}", "-d", work),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        archives = sorted(Path(work).glob("*.tar.gz"))
        if download.returncode != 0 or not archives:
            missing(
                f"could not download {project} {version}'s source distribution with pip "
                f"(the network or the package index); pip said:\n{_pip_error(download.stderr)}"
            )
        unpacked = Path(work) / "unpacked"
        with tarfile.open(archives[0]) as archive:
            members = []
            for member in archive.getmembers():
                _, _, inner = member.name.partition("/")
                if inner and wanted(inner):
                    member.name = inner
                    members.append(member)
            archive.extractall(unpacked, members=members, filter="data")
        if not (unpacked / marker).exists():
            missing(f"{project} {version}'s source distribution has no {marker}")
        try:
            unpacked.rename(folder)
        except OSError:  # another run put its copy in place first: use that one
            if not (folder / marker).exists():
                shutil.rmtree(folder, ignore_errors=True)
                unpacked.rename(folder)
    return folder
