"""Sphinx configuration of the wsgisession documentation: MyST Markdown pages, autodoc API.

``make docs`` builds it with warnings as errors and nitpicky cross-references (``-W -n``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's package, also when it is not installed

import wsgisession  # noqa: E402

project = "wsgisession"
author = "The wsgisession maintainers"
project_copyright = "2026, The wsgisession maintainers"
release = wsgisession.__version__
version = ".".join(release.split(".")[:2])

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
root_doc = "index"

# MyST: anchors for headings down to ### so pages can link to sections ([x](stores.md#redis)).
myst_heading_anchors = 3

# autodoc: members in the order of the source, type hints in the description, not the signature.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True}

# Nitpicky mode (-n) checks every cross-reference. References into wsgisession must resolve;
# references to other projects' objects (webob, redis-py, psycopg, the standard library) cannot,
# since the build runs offline and intersphinx would fetch their inventories from the network.
nitpick_ignore_regex = [
    (r"py:.*", r"(?!wsgisession\b)[\w.]*\.[\w.]+"),  # a dotted name outside wsgisession
    (r"py:.*", r"(Any|Callable|Iterable|Iterator|Mapping|MutableMapping|Sequence|TypeVar|_T)"),
    (r"py:.*", r"(str|int|float|bool|bytes|dict|list|tuple|set|type|object|None)"),
    (r"py:.*", r"(Exception|ValueError|TypeError|ImportError|LookupError|KeyError)"),
    # typeshed's WSGI types (_typeshed.wsgi), which exist for type checkers only
    (r"py:.*", r"(WSGIApplication|WSGIEnvironment|StartResponse)"),
    # private names, and internal types that signatures mention but the API does not offer
    (r"py:.*", r"([\w.]*\.)?_\w+"),
    (r"py:.*", r"(wsgisession\.\w+\.)?(Loader|SessionContext|SessionConfig|Plan|SameSite)"),
    # the standard library's modules (no inventory is fetched: the build is offline)
    (r"py:mod", r"json"),
    # the sans-I/O core and the cookie settings: front-end building blocks, documented in
    # their modules' docstrings, not yet pages of this reference
    (r"py:.*", r"wsgisession\.(core|cookies|policy)(\.\w+)*"),
]

html_theme = "furo"
html_title = f"wsgisession {release}"
html_static_path = ["_static"]
