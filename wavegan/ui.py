"""`python -m wavegan.ui`: the same as `wavegan ui` (wavegan/cli/ui.py)."""

from wavegan.cli.ui import main

if __name__ == "__main__":
    main()
