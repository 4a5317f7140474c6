"""`python -m wavegan.sweep`: the same as `wavegan sweep` (wavegan/cli/sweep.py)."""

import sys

from wavegan.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
