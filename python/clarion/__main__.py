"""``python -m clarion``: the command line."""

import sys

from clarion.cli import main

sys.exit(main())
