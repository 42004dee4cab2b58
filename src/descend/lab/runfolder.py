"""Run folders: every CLI run writes its resolved config, metrics, summary, arrays and pictures."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RunFolder", "plain"]


def plain(value: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and paths into YAML/JSON-friendly Python values."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class RunFolder:
    """A folder for one run: ``config.yaml``, ``metrics.csv``, ``summary.json``, ``report.html``,
    and each result kind's arrays and pictures (:mod:`~descend.lab.artifacts`)."""

    CONFIG = "config.yaml"
    METRICS = "metrics.csv"
    SUMMARY = "summary.json"
    REPORT = "report.html"

    def __init__(self, out: str | Path | None, command: str):
        if out is None:
            out = base = Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"
            n = 2
            while out.exists():  # two runs in one second: never write into the first one's folder
                out, n = base.with_name(f"{base.name}-{n}"), n + 1
        self.dir = Path(out)  # created with the first file, so a run refused up front leaves nothing
        self.files: list[Path] = []

    def path(self, name: str) -> Path:
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if p not in self.files:
            self.files.append(p)
        return p

    def write_config(self, config: Mapping[str, Any]) -> Path:
        import yaml

        p = self.path(self.CONFIG)
        p.write_text(yaml.safe_dump(plain(config), sort_keys=False))
        return p

    def write_metrics(self, rows: Iterable[Mapping[str, Any]], name: str = METRICS) -> Path:
        rows = list(rows)
        p = self.path(name)
        fields: list[str] = []
        for r in rows:
            fields.extend(k for k in r if k not in fields)
        with p.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in rows:
                w.writerow({k: plain(v) for k, v in r.items()})
        return p

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        return self.write_json(self.SUMMARY, summary)

    def write_json(self, name: str, values: Mapping[str, Any]) -> Path:
        p = self.path(name)
        p.write_text(json.dumps(plain(values), indent=2))
        return p

    def write_npz(self, name: str, **arrays: np.ndarray) -> Path:
        p = self.path(name)
        np.savez(p, **arrays)
        return p
