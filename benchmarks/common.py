"""What every benchmark ends with: a table on the console, the same figures as JSON in a file and as
the last printed line (so scripts can read it)."""

from __future__ import annotations

import json
from pathlib import Path


def report(result: dict, out: Path, table: bool = True) -> dict:
    if table:
        width = max(map(len, result))
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return result
