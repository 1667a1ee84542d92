"""The project's command line: `python cli.py validate-config FILE` (also `cb` once installed)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from domain.catalog import parse_catalog
from domain.config_check import config_problems

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "default.yaml"


def validate_config(path: str) -> int:
    """Print whether the file is a valid configuration, and every problem with its path."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}")
        return 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        print(f"{path}: 1 problem\n  (yaml): {where}{problem}")
        return 1
    problems = config_problems(data if data is not None else {})
    if problems:
        print(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}")
        for problem in problems:
            print(f"  {problem}")
        return 1
    catalog = parse_catalog(data)
    print(
        f"{path}: OK ({len(catalog.providers)} providers, {len(catalog.models)} models, "
        f"{len(catalog.virtual_models)} virtual models)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cb", description="Circuit Breaker tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate-config", help="validate a configuration file")
    check.add_argument("path", nargs="?", default=os.environ.get("CB_CONFIG", str(DEFAULT_CONFIG)))
    args = parser.parse_args(argv)
    if args.command == "validate-config":
        return validate_config(args.path)
    return 2


if __name__ == "__main__":
    sys.exit(main())
