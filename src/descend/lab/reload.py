"""Read run folders back into result objects (what ``descend report`` re-draws from)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from .artifacts import BY_COMMAND, BatchingArtifact, LRFindArtifact, RaceArtifact
from .runfolder import RunFolder

__all__ = ["load_run"]


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        # safe_load builds plain data only: a tag such as !!python/object is refused, never run
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise ParameterError(
            f"report: {str(path)!r} is not plain YAML data ({message})",
            owner="report",
            param="runs",
            value=str(path),
        ) from None
    if not isinstance(config, dict):
        raise ParameterError(
            f"report: {str(path)!r} holds no mapping of settings",
            owner="report",
            param="runs",
            value=str(path),
        )
    return config


def load_run(directory: str | Path) -> tuple[str, list[tuple[str, Any]]]:
    """``(command, [(kind, result), ...])`` for a run folder written by the CLI."""
    d = Path(directory)
    if not (d / RunFolder.CONFIG).exists() or not (d / RunFolder.SUMMARY).exists():
        raise ParameterError(
            f"report: {str(d)!r} is not a descend run folder (no {RunFolder.CONFIG} / {RunFolder.SUMMARY})",
            owner="report",
            param="runs",
            value=str(d),
        )
    config = _read_yaml(d / RunFolder.CONFIG)
    summary = json.loads((d / RunFolder.SUMMARY).read_text())
    command = config.get("command", "")
    if command == "demo":
        items: list[tuple[str, Any]] = [("suite", summary["suite"])] if "suite" in summary else []
        for key in config:
            if key.startswith("race_"):
                items.append(("race", RaceArtifact.read(config[key], summary[key], d, prefix=key)))
        for artifact in (BatchingArtifact, LRFindArtifact):
            key = artifact.PREFIX
            items.append((artifact.kind, artifact.read(config[key], summary[key], d)))
        return command, items
    artifact = BY_COMMAND.get(command)
    if artifact is None:
        raise ValueError(f"report: unknown run kind {command!r} in {str(d / RunFolder.CONFIG)!r}")
    return command, [(artifact.kind, artifact.read(config, summary, d))]
