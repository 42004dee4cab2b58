"""The optimizer benchmark runs end to end (tiny sizes) and rewrites only its own section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("numba")


def test_optim_benchmark_writes_its_section_and_keeps_the_others(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- section:data -->\nkept as it was\n<!-- /section:data -->\n")
    plot = tmp_path / "pictures" / "scaling.png"
    args = ["--rounds", "1", "--total", "4e4", "--leaves", "10", "--sizes", "1e3,1e4", "--min-time", "0"]
    args += ["--thread-sizes", "2e3,2e5"]  # 2e5: the two-thread plan runs
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "optim", "--", *args, "--doc", str(doc), "--plot", str(plot)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nGenerated, not edited: `python -m benchmarks`")
    assert "<!-- section:data -->\nkept as it was\n<!-- /section:data -->" in text
    optim = text[text.index("<!-- section:optim -->") : text.index("<!-- /section:optim -->")]
    assert "### 40,000 parameters as one array" in optim and "### 40,000 parameters as 10 arrays" in optim
    for rule in ("SGD", "Nesterov", "AdaGrad", "RMSprop", "AdamW", "Nadam", "AdaDelta"):
        assert f"| {rule} |" in optim
    assert "Machine: " in optim and "numba " in optim
    assert "floor, propagate (ms) | floor, checked (ms)" in optim  # the least any exact step costs
    assert "### One thread or two" in optim
    assert "| SGD | 2e+05 |" in optim or "no second thread to wake" in optim
    assert plot.stat().st_size > 10_000 and "](pictures/scaling.png)" in optim


def test_runner_lists_the_sections():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "optim" in done.stdout.split()


def test_sections_are_rewritten_in_place(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks._common import HEADER, write_section
    finally:
        sys.path.remove(str(ROOT))
    doc = tmp_path / "b.md"
    write_section("a", "first A", doc)
    write_section("b", "only B", doc)
    write_section("a", "second A", doc)
    text = doc.read_text()
    assert text.startswith(HEADER) and text.count("# Benchmarks") == 1
    assert text.index("second A") < text.index("only B") and "first A" not in text
