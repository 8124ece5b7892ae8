"""The Django guide's steps work on a fresh ``django-admin startproject`` project.

The settings block of ``docs/frameworks/django.md`` is appended, as it is, to the new project's
``settings.py``; then ``manage.py check`` passes, a user logs in through Django's test Client
and the admin, logs out, and ``manage.py clearsessions`` purges the store.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.frameworks.conftest import need

need("django")

ROOT = Path(__file__).resolve().parents[2]

#: What the project does once the guide's settings are in: through the test Client.
SCRIPT = """
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
from wsgisession.integrations.django import SessionStore, get_core

setup_test_environment()
get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
client = Client()
assert client.get("/admin/login/").status_code == 200
response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "pw"})
assert response.status_code == 302, response.status_code
assert b"Site administration" in client.get("/admin/").content
value = client.cookies["sessionid"].value
assert SessionStore(value)["_auth_user_id"] == "1"
assert type(get_core().store).__name__ == "SqliteStore"
client.post("/admin/logout/")
assert SessionStore(value).load() == {}
assert client.login(username="admin", password="pw")
print("logged in and out")
"""


def guide_settings() -> str:
    """The first python block of the Django guide: the lines to add to settings.py."""
    guide = (ROOT / "docs" / "frameworks" / "django.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```", guide, re.S)
    assert found is not None, "docs/frameworks/django.md has no python block"
    return found.group(1)


def manage(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` of *project*; fail with its output when it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def test_guide_steps_work_on_a_fresh_startproject(tmp_path: Path) -> None:
    """startproject + the guide's settings: check passes, login/logout and clearsessions work."""
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + guide_settings())

    assert "System check identified no issues" in manage(tmp_path, "check").stdout
    manage(tmp_path, "migrate", "--verbosity", "0")
    assert "logged in and out" in manage(tmp_path, "shell", "-c", SCRIPT).stdout
    assert (tmp_path / "sessions.db").exists()
    manage(tmp_path, "clearsessions")
