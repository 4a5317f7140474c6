"""`python -m wavegan.data`: the same as `wavegan data` (wavegan/cli/data.py)."""

from wavegan.cli.data import main

if __name__ == "__main__":
    main()
