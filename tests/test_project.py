"""Project hygiene: the README's quickstart is what CI runs, and the code passes ruff."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_quickstart_has_exactly_two_commands_and_ci_runs_the_test_one():
    demo, tests = quickstart_commands()
    assert "descend demo" in demo
    assert "pytest" in tests and ".[test," in tests and "peers]" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci
    # a new user's order, in one checkout: the demo (its quick form), then the tests
    assert f"{demo} --quick" in ci
    assert ci.index(f"{demo} --quick") < ci.index(tests)


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff not installed")
    proc = subprocess.run([ruff, "check", "src", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """The tour in the README is executed, in order, in one namespace: it must stay true."""
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["res"].success
    assert namespace["run"].steps_completed > 0
