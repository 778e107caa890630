"""The README's commands exist: every `make` target and `trustwh` subcommand it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dagster_project.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_two_commands_are_the_readme_s_and_ci_s():
    assert "make run" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\bmake ([a-z][a-z-]*)", README))))
def test_every_make_target_in_the_readme_exists(target):
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target


@pytest.mark.parametrize(
    "command", sorted(set(re.findall(r"\btrustwh ([a-z]+)", README)) - {"command"})
)
def test_every_trustwh_command_in_the_readme_exists(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"trustwh {command}" in capsys.readouterr().out
