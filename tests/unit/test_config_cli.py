"""`cb validate-config`: every problem of a configuration file, each with its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import cli
from actors.settings import DEFAULT_CONFIG
from domain.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_configuration_validates() -> None:
    done = subprocess.run(
        [sys.executable, "cli.py", "validate-config", str(DEFAULT_CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"{DEFAULT_CONFIG}: OK (")


def test_three_different_mistakes_are_each_reported_with_their_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    del data["providers"]["openai"]["base_url"]  # missing
    data["models"]["gpt-4o"]["input_price_per_mtok"] = -1  # out of range
    data["providers"]["anthropic"]["timeout_sec"] = 30  # unknown field
    data["virtual_models"]["auto"]["candidates"][1] = "gpt-5-turbo"  # dangling reference
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))

    assert cli.main(["validate-config", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: 4 problems",
        "  providers.anthropic.timeout_sec: unknown field",
        "  providers.openai.base_url: Field required",
        "  models.gpt-4o.input_price_per_mtok: Input should be greater than or equal to 0",
        "  virtual_models.auto.candidates[1]: unknown model 'gpt-5-turbo'",
    ]


def test_a_yaml_syntax_error_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("providers:\n  openai: [unclosed\n")
    assert cli.main(["validate-config", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: 1 problem" and out[1].startswith("  (yaml): line 3, column 1:")


def test_the_catalog_lists_every_dangling_reference_at_once() -> None:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["models"]["gpt-4o"]["provider"] = "nowhere"
    data["virtual_models"]["auto"]["candidates"].append("ghost")
    with pytest.raises(ValueError) as caught:
        parse_config(data)
    message = str(caught.value)
    assert "models.gpt-4o.provider: unknown provider 'nowhere'" in message
    assert "virtual_models.auto.candidates[4]: unknown model 'ghost'" in message
