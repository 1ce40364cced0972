"""``python -m corral ...``: the same command line as the ``corral`` script."""
import sys

from corral.cli import main

sys.exit(main())
