"""Run a training script in a child process and SIGKILL it when it prints a given line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(path: Path, text: str, args: list[str], kill_at: str | None = None) -> tuple[int, list[str]]:
    """Write ``text`` to ``path`` and run it with this checkout's descend; returns (exit code,
    stripped stdout lines). With ``kill_at``, the child is SIGKILLed right after printing that line."""
    path.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, str(path), *args], stdout=subprocess.PIPE, text=True, env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())
        if kill_at is not None and line.strip() == kill_at:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    proc.stdout.close()
    return proc.returncode, lines
