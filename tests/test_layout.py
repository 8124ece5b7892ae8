"""The test tree's own rules: tests/ never imports benchmarks/, one free_port, a file per module.

tests/support/ holds what the tests share (the test app, the servers, the clients, the stores);
tests/live/ what starts processes; tests/outage/ the outage tests; benchmarks/tests/ the
benchmarks' own tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def _modules(folder: Path) -> dict[Path, ast.Module]:
    """Every Python file under *folder*, parsed."""
    return {
        path: ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(folder.rglob("*.py"))
    }


def _imported(tree: ast.Module) -> set[str]:
    """The top-level package names *tree* imports anywhere (module level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_tests_never_import_the_benchmarks() -> None:
    """The benchmarks keep their own tests (benchmarks/tests); tests/ does not reach into them."""
    offenders = [
        str(path.relative_to(ROOT))
        for path, tree in _modules(TESTS).items()
        if "benchmarks" in _imported(tree)
    ]
    assert not offenders, f"move these to benchmarks/tests or drop the import: {offenders}"


def test_free_port_is_defined_once() -> None:
    """One free_port, in tests/support/servers.py; everything else imports it."""
    defined = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _modules(TESTS).items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "free_port"
    ]
    assert defined == [f"tests/support/servers.py:{defined[0].split(':')[1]}"], defined


def test_every_store_module_has_its_test_file() -> None:
    """wsgisession/stores/<name>.py is tested by tests/stores/test_<name>*.py (CookieStore too)."""
    stores = ROOT / "wsgisession" / "stores"
    missing = [
        path.name
        for path in sorted(stores.glob("[!_]*.py"))
        if not list((TESTS / "stores").glob(f"test_{path.stem}*.py"))
    ]
    assert not missing, f"no tests/stores/test_<name>.py for {missing}"


#: Modules of wsgisession/ tested somewhere other than tests/test_<module>*.py, and where.
ELSEWHERE = {
    # The outage policy shows only when a store fails, so its tests live with the outage tests.
    "policy": "tests/outage/test_policy.py",
    # The exception tree has no behaviour of its own: each error is tested where it is raised
    # (its message in test_options.py and the modules' tests); test_layers.py pins its imports.
    "errors": "tests/test_layers.py",
    # The contracts are run by every store's file (tests/stores/test_<store>.py); CountingStore
    # by nearly every test through tests/support/app.py.
    "testing": "tests/stores/test_memory.py",
}


def test_every_module_has_its_test_file() -> None:
    """wsgisession/<name>.py is tested by tests/test_<name>*.py, or by the file ELSEWHERE names.

    The integrations are tested by tests/frameworks/test_<framework>.py; modules whose name
    starts with an underscore (__init__, __main__, integrations/_options) are not held to it.
    """
    package = ROOT / "wsgisession"
    missing = []
    for path in sorted(package.glob("[!_]*.py")):
        if path.stem in ELSEWHERE:
            assert (ROOT / ELSEWHERE[path.stem]).is_file(), (path.stem, ELSEWHERE[path.stem])
        elif not list(TESTS.glob(f"test_{path.stem}*.py")):
            missing.append(f"wsgisession/{path.name} (tests/test_{path.stem}.py)")
    for path in sorted((package / "integrations").glob("[!_]*.py")):
        if not (TESTS / "frameworks" / f"test_{path.stem}.py").is_file():
            missing.append(
                f"wsgisession/integrations/{path.name} (tests/frameworks/test_{path.stem}.py)"
            )
    assert not missing, f"no test file for {missing}"
    assert set(ELSEWHERE) <= {path.stem for path in package.glob("*.py")}, "stale ELSEWHERE"


def test_the_benchmarks_tests_are_collected() -> None:
    """make test runs the benchmarks' tests too: pytest's testpaths names benchmarks/tests."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests", "benchmarks/tests"]
    assert (ROOT / "benchmarks" / "tests" / "test_benchmarks.py").is_file()
