"""Save and load optimizer state as plain arrays (``.npz``, no pickle)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._tree import treedef_from_text, treedef_to_text
from .base import OptState

__all__ = ["atomic_savez", "load_state", "save_state"]

_FORMAT = 1


def save_state(state: OptState, file: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """State as a flat dict of NumPy arrays; also written atomically to ``file`` (``.npz``) if given.

    Buffers are copied, so later steps do not change the returned dict.
    """
    if not isinstance(state, OptState):
        raise TypeError(f"save_state: state must be an OptState, got {type(state).__name__}")
    out: dict[str, np.ndarray] = {
        "format": np.array(_FORMAT, dtype=np.int64),
        "optimizer": np.array(state.optimizer),
        "t": np.array(state.t, dtype=np.int64),
        "treedef": np.array(treedef_to_text(state.treedef)),
        "dtypes": np.array([str(d) for d in state.dtypes]),
        "shapes": np.array(repr([tuple(s) for s in state.shapes])),
        "buffer_names": np.array(list(state.buffers), dtype=np.str_),
        # a rule may keep buffers that are not leaf-shaped (Adafactor's row and column factors)
        "buffer_shapes": np.array(repr({k: [b.shape for b in bufs] for k, bufs in state.buffers.items()})),
    }
    for name, bufs in state.buffers.items():
        for i, buf in enumerate(bufs):
            out[f"buffer/{name}/{i}"] = buf.copy()
    for name, value in state.scalars.items():
        out[f"scalar/{name}"] = np.array(value, dtype=np.float64)
    if file is not None:
        atomic_savez(file, out)
    return out


def load_state(source: Mapping[str, Any] | str | os.PathLike[str]) -> OptState:
    """Rebuild an :class:`OptState` from :func:`save_state`'s dict or ``.npz`` file."""
    import ast

    if isinstance(source, (str, os.PathLike)):
        with np.load(Path(source), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        raise TypeError(f"load_state: source must be a dict or a path, got {type(source).__name__}")
    for key in ("format", "optimizer", "t", "treedef", "dtypes", "shapes", "buffer_names"):
        if key not in data:
            raise ValueError(f"load_state: not an optimizer state (missing {key!r})")
    if int(data["format"]) != _FORMAT:
        raise ValueError(f"load_state: unknown state format {int(data['format'])}")
    dtypes = [np.dtype(str(d)) for d in np.atleast_1d(data["dtypes"])] if data["dtypes"].size else []
    shapes = [tuple(s) for s in ast.literal_eval(str(data["shapes"]))]
    names = [str(n) for n in np.atleast_1d(data["buffer_names"])] if data["buffer_names"].size else []
    # states saved before buffer_shapes existed hold leaf-shaped buffers only
    buffer_shapes = ast.literal_eval(str(data["buffer_shapes"])) if "buffer_shapes" in data else {}
    if not isinstance(buffer_shapes, dict):
        raise ValueError("load_state: buffer_shapes is not a dict of shapes")
    buffers = {}
    for name in names:
        bufs = []
        expected = [tuple(s) for s in buffer_shapes.get(name, shapes)]
        if len(expected) != len(shapes):
            raise ValueError(f"load_state: buffer {name} has {len(expected)} shapes for {len(shapes)} leaves")
        for i, (shape, dtype) in enumerate(zip(expected, dtypes, strict=True)):
            arr = np.array(data[f"buffer/{name}/{i}"], dtype=dtype, copy=True)
            if arr.shape != shape:
                raise ValueError(f"load_state: buffer {name}/{i} has shape {arr.shape}, expected {shape}")
            bufs.append(arr)
        buffers[name] = bufs
    scalars = {k[len("scalar/") :]: float(v) for k, v in data.items() if k.startswith("scalar/")}
    return OptState(
        optimizer=str(data["optimizer"]),
        t=np.int64(data["t"]),
        treedef=treedef_from_text(str(data["treedef"])),
        shapes=shapes,
        dtypes=dtypes,
        buffers=buffers,
        scalars=scalars,
    )


def atomic_savez(file: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``file`` (.npz) via temp file + fsync + rename: never a torn file."""
    path = Path(file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
