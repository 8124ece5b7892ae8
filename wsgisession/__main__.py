"""``python -m wsgisession``: the same command line as the ``wsgisession`` script."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
