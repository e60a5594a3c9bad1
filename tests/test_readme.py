"""Every code block of the README runs (Python) or matches what CI runs (shell)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
SHELL = [code.strip() for lang, code in BLOCKS if lang == "bash"]


def test_the_readme_has_code_blocks():
    assert len(PYTHON) >= 4 and len(SHELL) == 2


@pytest.mark.cpu
@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_block_runs(index, tmp_path):
    code = PYTHON[index]
    if "torch" in code:
        pytest.importorskip("torch")
    script = tmp_path / f"block{index}.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_shell_commands_name_real_extras_and_the_ci_test_command():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for command in SHELL:
        for extra in re.findall(r'-e "\.\[(\w+)\]"', command):
            assert extra in extras, f"README installs unknown extra {extra!r}"
    demo, tests = SHELL
    assert demo.endswith("lazykernels demo")
    assert tests.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert '"torch==2.13.0" -e ".[test]"' in ci and "-m pytest" in ci
    assert '"torch==2.13.0" -e ".[test]"' in tests


def test_the_demo_picture_exists():
    assert (ROOT / "docs" / "demo.png").is_file()
