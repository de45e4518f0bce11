"""Write (or check) server/openapi.json from the app: `python -m omd_server.openapi [--check]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / "openapi.json"


def render() -> str:
    from .app import openapi_document

    # sorted keys and a trailing newline: the file only changes when the API does
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m omd_server.openapi", description=__doc__)
    p.add_argument("--out", type=Path, default=DEFAULT)
    p.add_argument("--check", action="store_true", help="fail if the file is not up to date")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if not args.out.exists() or args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} is stale: run python -m omd_server.openapi", file=sys.stderr)
            return 1
        return 0
    if not args.out.exists() or args.out.read_text(encoding="utf-8") != text:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
