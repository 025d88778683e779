"""``python -m conformance.params check REQUEST.json ...`` (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
