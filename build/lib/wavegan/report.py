"""`python -m wavegan.report`: the same as `wavegan report` (wavegan/cli/report.py)."""

import sys

from wavegan.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
