"""``python -m stylekit.train``: see :mod:`stylekit.train.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
