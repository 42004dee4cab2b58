"""Shared pieces of the benchmark scripts: machine description, side-by-side timing, and the
section-by-section writing of ``docs/benchmarks.md``."""

from __future__ import annotations

import importlib
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))  # measure this checkout's descend

HEADER = """# Benchmarks

Generated, not edited: `python -m benchmarks` runs every `benchmarks/bench_NAME.py`
(`python -m benchmarks NAME ...` runs some of them) and each script rewrites only its own
section below, between the HTML comments `section:NAME` and `/section:NAME`. A section
states the command, machine and versions it was measured with; every comparison in it is a
ratio of medians measured side by side in one run, the contenders alternating round by round.
"""


def section_markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def write_section(name: str, markdown: str, doc: Path = DOC) -> None:
    """Put ``markdown`` between the markers of section ``name`` in ``doc``, leaving the others."""
    begin, end = section_markers(name)
    text = doc.read_text() if doc.exists() else HEADER
    opening = re.search(r"^<!-- section:[\w-]+ -->$", text, flags=re.MULTILINE)  # the first section
    first = opening.start() if opening else len(text)
    if text[:first].strip() != HEADER.strip():
        text = HEADER + "\n" + text[first:]  # the standard header, whatever stood before
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        a, b = text.index(begin), text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def machine() -> str:
    """One line: CPUs usable, model, last-level cache, memory, OS, load average now."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [f"{cpus} CPUs usable (nproc)", cpu_model()]
    l3 = _read("/sys/devices/system/cpu/cpu0/cache/index3/size")
    if l3:
        parts.append(f"L3 {l3}")
    meminfo = _read("/proc/meminfo")
    if meminfo:
        kib = int(meminfo.splitlines()[0].split()[1])
        parts.append(f"{kib / 2**20:.0f} GiB RAM")
    parts.append(f"{platform.system()} {platform.release()}")
    if hasattr(os, "getloadavg"):
        parts.append("load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    return ", ".join(parts)


def versions(*names: str) -> str:
    """``Python 3.11.7, numpy 2.4.6, ...`` for the named modules that import (others: absent)."""
    out = [f"Python {platform.python_version()}"]
    for name in names:
        try:
            out.append(f"{name} {importlib.import_module(name).__version__}")
        except ImportError:
            out.append(f"{name} absent")
    return ", ".join(out)


def alternate(
    fns: dict[str, Callable[[], object]], rounds: int, min_time: float = 0.005
) -> dict[str, list[float]]:
    """Seconds per call of each function: ``rounds`` samples each, the functions alternating
    within every round so that a burst of load from elsewhere hits all of them alike. A sample
    repeats its function until it has run ``min_time`` seconds (short calls are averaged)."""
    calls = {}
    for name, fn in fns.items():  # warm up, and choose how many calls make one sample
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        calls[name] = max(1, int(min_time / max(once, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = calls[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> float:
    """Half the interquartile range relative to the median: how noisy a measurement was."""
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return (q[2] - q[0]) / 2 / q[1] if q[1] else 0.0
