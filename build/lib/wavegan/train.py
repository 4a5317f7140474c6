"""`python -m wavegan.train`: the same as `wavegan train` (wavegan/cli/train.py)."""

from wavegan.cli.train import main

if __name__ == "__main__":
    main()
