"""``python -m stylekit``: see :mod:`stylekit.cli`."""

import sys

from .cli import main

sys.exit(main())
