"""``python -m conformance.params check REQUEST.json ...`` (conformance/cli/params.py)."""

import sys

from conformance.cli.params import main

sys.exit(main())
