"""The committed schema: `python -m api.graphql.export` (`make graphql-schema`) writes the
live schema's SDL to `api/graphql/schema.graphql`; `--check` only says whether it differs.

The committed file is what reviewers read and what the breaking-change gate
(`api/graphql/gate.py`) holds to the legacy baseline, so a schema change shows up as a diff
of this file in the same commit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).parent
COMMITTED = HERE / "schema.graphql"
LEGACY_BASELINE = HERE / "legacy_baseline.graphql"
COMMAND = "make graphql-schema  (or: python -m api.graphql.export)"


def live_sdl() -> str:
    """The schema `/graphql` serves, as SDL (ending in one newline)."""
    from api.graphql.schema import schema  # the whole API: imported only when asked for

    return schema.as_str().rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.graphql.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args(argv)
    sdl = live_sdl()
    current = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    if args.check:
        if current != sdl:
            print(f"{COMMITTED} differs from the live schema: run {COMMAND}", file=sys.stderr)
            return 1
        print(f"{COMMITTED} is the live schema")
        return 0
    if current != sdl:
        COMMITTED.write_text(sdl, encoding="utf-8")
        print(f"wrote {COMMITTED}")
    else:
        print(f"{COMMITTED} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
