"""Run a training script in a child process and SIGKILL it when it prints a given line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(
    path: Path,
    text: str,
    args: list[str],
    kill_at: str | None = None,
    *,
    kill_when: Callable[[str], bool] | None = None,
    stderr: Path | None = None,
    timeout: float = 300,
) -> tuple[int, list[str]]:
    """Write ``text`` to ``path`` and run it with this checkout's descend; returns (exit code,
    stripped stdout lines). The child is SIGKILLed right after printing the line ``kill_at``, or
    the first line for which ``kill_when(line)`` is true. ``stderr``: a file that keeps the
    child's standard error (for the message of a failed assertion)."""
    path.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    err = open(stderr, "w") if stderr is not None else None
    proc = subprocess.Popen(
        [sys.executable, str(path), *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env
    )
    lines = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if (kill_at is not None and line.strip() == kill_at) or (
                kill_when is not None and kill_when(line)
            ):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if err is not None:
            err.close()
    return proc.returncode, lines


def after_step(n: int) -> Callable[[str], bool]:
    """``kill_when`` for a script printing ``step K`` lines: true once K >= n."""
    return lambda line: line.startswith("step") and int(line.split()[1]) >= n
