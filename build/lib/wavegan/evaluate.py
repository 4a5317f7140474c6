"""`python -m wavegan.evaluate`: the same as `wavegan evaluate` (wavegan/cli/evaluate.py)."""

from wavegan.cli.evaluate import main

if __name__ == "__main__":
    main()
