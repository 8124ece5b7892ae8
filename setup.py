"""Package metadata for wsgisession; the core needs WebOb alone, every driver is an extra."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

EXTRAS = {
    "redis": ["redis>=5.0", "hiredis>=2.0"],
    "postgres": ["psycopg[binary]>=3.1", "psycopg-pool>=3.2"],
    "cookie": ["cryptography>=42"],
    "test": [
        "pytest>=8",
        "webtest>=3.0",
        "hypothesis>=6.100",
        "gunicorn>=22",
        "requests>=2.31",
        "selenium>=4.20",
    ],
    "frameworks": ["flask>=3.0", "bottle>=0.12", "falcon>=3.1", "pyramid>=2.0", "django>=4.2"],
    "dev": ["ruff>=0.6", "mypy>=1.10", "types-WebOb", "types-requests"],
    "bench": [
        "beaker>=1.13",
        "flask>=3.0",
        "flask-session>=0.8",
        "flask-sqlalchemy>=3.1",
        "sqlalchemy>=2.0",
        "django>=4.2",
        "django-redis>=5.4",
        "gunicorn>=22",
        "requests>=2.31",
        "matplotlib>=3.8",
    ],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="wsgisession",
    version="0.1.0",
    description="Server-side sessions for any WSGI application: safe defaults, no lost updates.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["wsgisession", "wsgisession.*"]),
    package_data={"wsgisession": ["py.typed"]},
    install_requires=["WebOb>=1.8"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["wsgisession = wsgisession.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Middleware",
        "Typing :: Typed",
    ],
)
