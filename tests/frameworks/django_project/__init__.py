"""A small Django project for the engine's tests: auth, messages, the admin, our SESSION_ENGINE.

Django's settings are process-wide and can be configured once, so every Django test of this
suite calls :func:`configure` (it does the work once) and sets the store it wants with
``override_settings(WSGISESSION_STORE=...)``; the engine rebuilds itself when that changes.
The database is a SQLite file in a temporary folder, migrated once, holding the test users.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: The middleware of a stock ``startproject`` project, with the engine's outage middleware
#: placed right before Django's own SessionMiddleware.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "wsgisession.integrations.django.SessionPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

SECRET_KEY = "wsgisession-django-tests-only-not-a-secret"


def settings_dict(database: Path) -> dict[str, Any]:
    """The project's settings, with its SQLite database at *database*."""
    return {
        "DEBUG": False,
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": ["testserver", "localhost", "127.0.0.1"],
        "INSTALLED_APPS": INSTALLED_APPS,
        "MIDDLEWARE": MIDDLEWARE,
        "ROOT_URLCONF": "tests.frameworks.django_project.urls",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}},
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "USE_TZ": True,
        "STATIC_URL": "static/",
        # Cheap hashing: the tests log in hundreds of times.
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
        "MESSAGE_STORAGE": "django.contrib.messages.storage.session.SessionStorage",
        "SESSION_ENGINE": "wsgisession.integrations.django",
        "WSGISESSION_STORE": "memory://",
    }


_configured = False


def configure() -> None:
    """Configure Django with this project's settings and migrate its database, once."""
    global _configured
    if _configured:
        return
    import django
    from django.conf import settings
    from django.core.management import call_command

    if settings.configured:
        raise RuntimeError(
            "Django's settings were configured before the wsgisession Django tests ran; "
            "configure them with tests.frameworks.django_project.configure() instead"
        )
    folder = Path(tempfile.mkdtemp(prefix="wsgisession-django-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    settings.configure(**settings_dict(folder / "db.sqlite3"))
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    _configured = True
