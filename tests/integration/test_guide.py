"""The developer guide (`docs/guide/`) is run, so it cannot drift from the code: every `sh`,
`python` and `js` example of each page runs in order against the test gateway, as a newcomer
would paste it, and what it prints must match the answer the guide shows after it (rules:
tests/support/doc_examples.py). Each page gets a fresh tenant in `$TENANT` and `$KEY`;
`shell` blocks (shown, not run) must be commands another test runs, named here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.emulator import ProviderEmulator
from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.cluster import ADMIN_TOKEN
from tests.support.doc_examples import (
    RUNNABLE,
    Block,
    blocks,
    json_mismatch,
    output_json,
    text_mismatch,
)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(path.name for path in GUIDE.glob("*.md"))
# commands the guide shows without running them here, and the test that runs each
SHOWN_ELSEWHERE = {
    "make run": "tests/integration/test_quickstart.py (python serve_app.py, the demo tenant)",
    "make test": ".ci/run, which runs the whole suite this way",
    "make unit": "tests/unit, part of make test",
    "make console": "make install, before every test run",
    "export CB=": "this test sets $CB and $ADMIN to the test gateway",
    "export GUIDE=": "this test sets $GUIDE to docs/guide",
    "CB_DATABASE_URL=": "tests/integration (the gateway fixture's PostgreSQL half)",
    "ray start": "tests/support/cluster.py starts Ray the same way",
    "RAY_ADDRESS=auto": "tests/support/cluster.py (serve_app on a running Ray)",
    "pip install": "make install",
    "npm install": "make sdk-ts",
}
# what the emulated model answers on a page, where the guide needs a model to call a tool
MODEL_TURNS: dict[str, Callable[[ProviderEmulator], None]] = {
    "executing-and-streaming.md": lambda emulator: emulator.script(
        "Write a long story", chunks=["Once upon a time, "] * 50, chunk_delay=0.2
    ),
    "errors.md": lambda emulator: emulator.script(
        "Something the provider refuses", status=400,
        error_body={"error": {"message": "Invalid 'messages'", "type": "invalid_request_error"}},
    ),
    "tools-and-mcp.md": lambda emulator: (
        emulator.script("mortgage on 400000", tool_calls=[{"name": "mortgage_calculator",
                        "arguments": {"price": 400000, "down_payment": 80000,
                                      "annual_rate_percent": 6.5, "term_years": 30}}],
                        times=1),
        emulator.script("How many words", tool_calls=[{"name": "word_count",
                        "arguments": {"text": "the quick brown fox"}}], times=1),
    ),
}  # fmt: skip
TIMEOUT_S = 180
# a shell block's variables, exported or not, for the next block (as in one terminal); not
# bash's own
KEEP_VARIABLES = (
    'for v in $(compgen -v); do case "$v" in BASH*|EUID|PPID|UID|SHELLOPTS|FUNCNAME|GROUPS|'
    "PIPESTATUS|_|RANDOM|SRANDOM|SECONDS|LINENO|EPOCH*|HISTCMD|OPT*|IFS|PS?|DIRSTACK|COMP*|"
    'HOST*|MACHTYPE|OSTYPE|SHLVL|PWD|OLDPWD) ;; *) declare -p "$v" ;; esac; done'
)


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_the_guide_is_runnable_or_named(page: str) -> None:
    """Unknown languages and unnamed shown-only commands fail here, before any cluster."""
    for block in blocks((GUIDE / page).read_text()):
        assert block.lang in (*RUNNABLE, "shell", "json", "text", "http", "yaml", "ts"), (
            f"{block.where(page)}: say whether it runs (sh, python, js) or is shown (shell)"
        )
        if block.lang == "sh":  # under pipefail a reader that stops early fails the writer
            assert not re.search(r"\|\s*(head\b|grep -q)", block.code), (
                f"{block.where(page)}: `| head` or `| grep -q` can SIGPIPE the command before "
                "it (exit 141 under pipefail): write to a file, or use grep -m"
            )
        if block.lang == "shell":
            for line in block.code.splitlines():
                command = line.split("#")[0].strip()
                if command:
                    assert any(command.startswith(c) for c in SHOWN_ELSEWHERE), (
                        f"{block.where(page)}: {command!r} is neither run here nor named in "
                        "SHOWN_ELSEWHERE with the test that runs it"
                    )


class Reader:
    """One page read by a newcomer: a shell whose exported variables carry from block to
    block, the venv's Python with the SDK, Node with the TypeScript SDK."""

    def __init__(self, gateway: ApiClient, workdir: Path) -> None:
        self.workdir = workdir
        tenant = gateway.new_tenant("Guide reader")
        base = str(gateway.http.base_url).rstrip("/")
        path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        self.env = {
            "PATH": path, "HOME": os.environ.get("HOME", str(workdir)), "LANG": "C.UTF-8",
            "CB": base, "ADMIN": ADMIN_TOKEN, "TENANT": tenant.id, "KEY": tenant.api_key,
            "CB_BASE_URL": base, "CB_TENANT_ID": tenant.id, "CB_API_KEY": tenant.api_key,
            "GUIDE": str(GUIDE),
        }  # fmt: skip
        self.state = workdir / ".state.sh"
        for shared in ("config", "docs"):  # paths the guide names "from the repository's root"
            (workdir / shared).symlink_to(ROOT / shared)
        modules = workdir / "node_modules" / "@circuit-breaker"
        modules.mkdir(parents=True)
        (modules / "sdk").symlink_to(ROOT / "sdk" / "typescript")

    def run(self, block: Block) -> str:
        if block.lang == "sh":
            script = (
                "set -euo pipefail\n"
                f"[ -f {self.state} ] && source {self.state} 2>/dev/null || true\n"
                f"{block.code}\n"
                f"{KEEP_VARIABLES} > {self.state}; env -0 > {self.state}.env\n"
            )
            command = ["bash", "-c", script]
        elif block.lang == "python":
            (self.workdir / "example.py").write_text(block.code)
            command = [sys.executable, "example.py"]
        else:
            (self.workdir / "example.mjs").write_text(block.code)
            command = ["node", "example.mjs"]
        run = subprocess.run(
            command, cwd=self.workdir, env=self.exported(), capture_output=True, text=True,
            timeout=TIMEOUT_S,
        )  # fmt: skip
        said = f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        assert run.returncode == 0, f"exit {run.returncode}\n{said}"
        return run.stdout

    def exported(self) -> dict[str, str]:
        """The environment as the last shell block left it."""
        dump = Path(f"{self.state}.env")
        if not dump.exists():
            return dict(self.env)
        pairs = (item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
        return {**self.env, **dict(pairs)}


@SQLITE_ONLY
@pytest.mark.parametrize("page", PAGES)
def test_the_guide_runs_as_written(gateway: ApiClient, page: str, tmp_path: Path) -> None:
    if page in MODEL_TURNS:
        MODEL_TURNS[page](gateway.cluster.emulator)
    reader = Reader(gateway, tmp_path)
    examples = [b for b in blocks((GUIDE / page).read_text()) if b.lang in RUNNABLE]
    assert examples or page == "README.md", f"{page} has no example that runs"
    for block in examples:
        output = reader.run(block)
        expected = block.expected
        if expected is None:
            continue
        if expected.lang == "json":
            miss = json_mismatch(output_json(expected.code), output_json(output))
        else:
            miss = text_mismatch(expected.code, output)
        assert miss is None, f"{block.where(page)}: {miss}\n--- printed:\n{output[-3000:]}"
