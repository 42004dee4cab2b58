"""Training checkpoints: one atomic ``.npz`` of plain arrays plus a JSON header (no pickle)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..optim import OptState, load_state, save_state
from ..optim.persist import atomic_savez

__all__ = ["CHECKPOINT_NAME", "config_hash", "diff_configs", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_NAME = "checkpoint.npz"
_FORMAT = 1


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``config`` (the part a resumed run must share)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def diff_configs(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Readable list of the keys whose values differ, e.g. ``optimizer.lr: 0.1 (checkpoint) vs 0.01``."""
    out: list[str] = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(diff_configs(a, b, prefix=f"{name}."))
        elif a != b:
            out.append(f"{name}: {a!r} (checkpoint) vs {b!r} (this run)")
    return out


def _split(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Move arrays out of a nested dict into ``arrays`` (returns the JSON-able remainder)."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {k: _split(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return np.array(arrays[obj["__array__"]])
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def write_checkpoint(
    directory: str | os.PathLike[str],
    *,
    params: dict[str, np.ndarray],
    state: OptState,
    header: dict[str, Any],
    extra: dict[str, Any],
) -> Path:
    """Write params, optimizer state, a JSON header and extra (arrays allowed) atomically."""
    arrays: dict[str, np.ndarray] = {}
    for k, v in params.items():
        arrays[f"param/{k}"] = v
    for k, v in save_state(state).items():
        arrays[f"opt/{k}"] = v
    rest = _split(extra, "extra", arrays)
    meta = {"format": _FORMAT, **header, "extra": rest}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, default=str))
    return atomic_savez(Path(directory) / CHECKPOINT_NAME, arrays)


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], OptState, dict[str, Any]]:
    """Inverse of :func:`write_checkpoint`: (params, optimizer state, header with ``extra``)."""
    with np.load(Path(path), allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if "meta" not in data:
        raise ValueError(f"fit: {str(path)!r} is not a descend checkpoint (no header)")
    meta = json.loads(str(data["meta"]))
    if meta.get("format") != _FORMAT:
        raise ValueError(f"fit: checkpoint {str(path)!r} has unknown format {meta.get('format')!r}")
    params = {k[len("param/") :]: v for k, v in data.items() if k.startswith("param/")}
    state = load_state({k[len("opt/") :]: v for k, v in data.items() if k.startswith("opt/")})
    meta["extra"] = _join(meta["extra"], data)
    return params, state, meta
