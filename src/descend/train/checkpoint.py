"""Training checkpoints: atomic, checksummed ``.npz`` files of plain arrays plus a JSON header (no
pickle), the previous one kept, and a lock so that one run at a time writes a folder.

A checkpoint folder holds ``checkpoint.npz`` (the newest) and ``checkpoint.prev.npz`` (the one
before). A new checkpoint is written to a temporary file, fsynced, and only then does the newest
become the previous one and the new file the newest (two renames, then an fsync of the folder):
whenever a run is killed, at least one complete checkpoint is on disk. Each file carries the
SHA-256 of its arrays; :func:`load_latest` verifies it, and when the newest file is damaged it
warns, naming the file and the damage, and resumes from the previous one.

``checkpoint.lock`` holds the pid, host and start time of the run writing the folder. A second run
is refused; a lock whose process is gone (the run was killed) is recognised as stale and taken
over, with a warning. Temporary files of a killed run are removed when the next run takes the
lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import socket
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, CheckpointWarning, ParameterError
from ..optim import OptState, load_state, save_state

__all__ = [
    "CHECKPOINT_NAME",
    "DAMAGED_NAME",
    "LOCK_NAME",
    "PREVIOUS_NAME",
    "CheckpointLock",
    "config_hash",
    "diff_configs",
    "load_latest",
    "open_checkpoint_dir",
    "read_checkpoint",
    "read_sealed",
    "write_checkpoint",
    "write_sealed",
]

CHECKPOINT_NAME = "checkpoint.npz"
PREVIOUS_NAME = "checkpoint.prev.npz"
#: a damaged newest checkpoint, set aside when a run resumes from the previous one
DAMAGED_NAME = "checkpoint.npz.damaged"
LOCK_NAME = "checkpoint.lock"
#: format 2 added the checksum; format 1 files (no checksum) are still read
_FORMAT = 2
_READABLE = (1, 2)
#: the prefix and suffix of the temporary files a checkpoint is written to
_TMP_PREFIX, _TMP_SUFFIX = f".{CHECKPOINT_NAME}.", ".tmp"


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


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "checksum":
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _first_non_finite(arrays: dict[str, np.ndarray]) -> str | None:
    for name, a in arrays.items():
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            return name
    return None


def write_checkpoint(
    directory: str | os.PathLike[str],
    *,
    params: dict[str, np.ndarray],
    state: OptState,
    header: dict[str, Any],
    extra: dict[str, Any],
) -> Path:
    """Write params, optimizer state, a JSON header and extra (arrays allowed) as the newest
    checkpoint of ``directory``; the newest one so far becomes the previous one.

    Refuses (``ValueError``) a checkpoint holding NaN or inf anywhere: parameters, optimizer
    state, or any number of the header and extra.
    """
    arrays: dict[str, np.ndarray] = {}
    for k, v in params.items():
        arrays[f"param/{k}"] = v
    for k, v in save_state(state).items():
        arrays[f"opt/{k}"] = v
    rest = _split(extra, "extra", arrays)
    bad = _first_non_finite(arrays)
    if bad is not None:
        raise ValueError(f"refusing to write a checkpoint: {bad} holds NaN or inf")
    try:  # allow_nan=False: a NaN or inf in the JSON part is refused as well
        text = json.dumps(
            {"format": _FORMAT, **header, "extra": rest}, sort_keys=True, default=str, allow_nan=False
        )
    except ValueError:
        raise ValueError(
            "refusing to write a checkpoint: a number of its header or extra is NaN or inf"
        ) from None
    arrays["meta"] = np.array(text)
    folder = Path(directory)
    newest, previous = folder / CHECKPOINT_NAME, folder / PREVIOUS_NAME

    def keep_previous() -> None:  # the new file is complete on disk: only now may the older copy go
        if newest.exists():
            os.replace(newest, previous)

    return write_sealed(newest, arrays, before_replace=keep_previous)


def write_sealed(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], *, before_replace: Any = None
) -> Path:
    """Write ``arrays`` plus their SHA-256 (``checksum``) as the ``.npz`` file ``path``, atomically:
    a temporary file in the same folder (``.<name>.<pid>.<random>.tmp``), fsynced, then renamed
    over ``path`` and the folder fsynced. ``before_replace()`` runs between the fsync and the
    rename. Read it back with :func:`read_sealed`."""
    path = Path(path)
    arrays = {**arrays, "checksum": np.array(_digest(arrays))}
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    # 0o666 less the umask, as any file the run folder holds (mkstemp's 0o600 would differ)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
    return path


def read_sealed(
    path: str | os.PathLike[str],
    *,
    what: str = "descend checkpoint",
    error: type[Exception] = CheckpointError,
) -> dict[str, np.ndarray]:
    """The arrays of a file written by :func:`write_sealed`, its checksum verified (and dropped).

    A file that is missing, empty, truncated, not an ``.npz``, holds pickled objects, or whose
    checksum is absent or wrong raises ``error`` (with ``path=``) saying so and naming the file.
    """
    path = Path(path)
    data = _load_arrays(path, what=what, error=error)
    if "checksum" not in data:
        raise error(f"{str(path)!r} is damaged or not a {what} (its checksum is missing)", path=path)
    if str(data.pop("checksum")) != _digest(data):
        raise error(f"{str(path)!r} is damaged (checksum mismatch)", path=path)
    return data


def _fsync_dir(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform that cannot open folders (Windows) has nothing to sync
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], OptState, dict[str, Any]]:
    """Inverse of :func:`write_checkpoint`: (params, optimizer state, header with ``extra``).

    The file is verified (its checksum, and that nothing is NaN or inf); a damaged file or one
    that is not a descend checkpoint raises :class:`~descend.errors.CheckpointError` saying what
    is wrong with it.
    """
    path = Path(path)
    data = _load_arrays(path)
    if "meta" not in data:
        raise CheckpointError(f"{str(path)!r} is not a descend checkpoint (no header)", path=path)
    try:
        meta = json.loads(str(data["meta"]))
    except ValueError:
        raise CheckpointError(f"{str(path)!r} is damaged (its header is not valid JSON)", path=path) from None
    if not isinstance(meta, dict) or meta.get("format") not in _READABLE:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"checkpoint {str(path)!r} has unknown format {fmt!r}", path=path)
    if meta["format"] >= 2:
        if "checksum" not in data:
            raise CheckpointError(f"{str(path)!r} is damaged (its checksum is missing)", path=path)
        if str(data["checksum"]) != _digest(data):
            raise CheckpointError(f"{str(path)!r} is damaged (checksum mismatch)", path=path)
    checked = data
    if meta["format"] == 1:  # it wrote a NaN lr into the history of an epoch resumed at its end
        checked = {k: v for k, v in data.items() if k.startswith(("param/", "opt/"))}
    bad = _first_non_finite(checked)
    if bad is not None:
        raise CheckpointError(f"{str(path)!r} is damaged ({bad} holds NaN or inf)", path=path)
    try:
        params = {k[len("param/") :]: v for k, v in data.items() if k.startswith("param/")}
        state = load_state({k[len("opt/") :]: v for k, v in data.items() if k.startswith("opt/")})
        meta["extra"] = _join(meta["extra"], data)
    except (KeyError, ValueError, SyntaxError) as exc:
        raise CheckpointError(f"{str(path)!r} is damaged ({exc})", path=path) from None
    return params, state, meta


def _load_arrays(
    path: Path, *, what: str = "descend checkpoint", error: type[Exception] = CheckpointError
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``; numpy's errors become a one-line reason naming the file
    (``what`` the file should be, raised as ``error``)."""
    try:
        fh = open(path, "rb")  # ours to close: np.load leaks its own handle on a broken archive
    except OSError as exc:
        raise error(f"{str(path)!r} cannot be read ({exc.strerror or exc})", path=path) from None
    with fh:
        magic = fh.read(4)
        if magic != b"PK\x03\x04":
            # numpy would try to unpickle it and advise allow_pickle=True: never the right advice here
            why = "is empty" if not magic else f"is damaged or not a {what} (not an .npz archive)"
            if magic[:1] == b"\x93":
                why = f"is damaged or not a {what} (a single .npy array)"
            raise error(f"{str(path)!r} {why}", path=path)
        fh.seek(0)
        try:
            with np.load(fh, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except zipfile.BadZipFile as exc:
            reason = "truncated zip archive" if "not a zip file" in str(exc) else str(exc)
            why = f"is damaged ({reason})"
        except ValueError as exc:
            pickled = "pickle" in str(exc)
            why = f"is not a {what} (an array holds Python objects)" if pickled else f"is damaged ({exc})"
        except (OSError, EOFError) as exc:
            why = f"is damaged ({exc or 'unexpected end of file'})"
        except Exception as exc:  # any other failure to parse a damaged archive
            why = f"is damaged ({type(exc).__name__}: {exc})"
    raise error(f"{str(path)!r} {why}", path=path)


def load_latest(
    directory: str | os.PathLike[str], *, owner: str = "fit", warn: bool = True, set_aside: bool = False
) -> tuple[Path, tuple[dict[str, np.ndarray], OptState, dict[str, Any]]] | None:
    """The newest intact checkpoint of ``directory`` as ``(path, (params, state, header))``, or
    ``None`` when the folder holds none.

    A damaged (or missing) newest file falls back to the previous one, with a
    :class:`~descend.errors.CheckpointWarning` naming the file, the damage and the step resumed
    from (``warn=False``: silently); when no file is intact, a
    :class:`~descend.errors.CheckpointError` names each one and its damage (messages start with
    ``owner:`` unless it is empty). ``set_aside=True``
    (for the run that will write the folder) renames a damaged newest file to
    ``checkpoint.npz.damaged``, so that the next checkpoint does not make it the previous one in
    place of the intact one.
    """
    folder = Path(directory)
    said = f"{owner}: " if owner else ""  # the command line names its command itself
    problems: list[str] = []
    for name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        path = folder / name
        if not path.exists():
            if name == CHECKPOINT_NAME and (folder / PREVIOUS_NAME).exists():
                problems.append(f"{name} is missing (a run was killed while replacing it)")
            continue
        try:
            loaded = read_checkpoint(path)
        except CheckpointError as exc:
            problems.append(str(exc).replace(repr(str(path)), name, 1))
            continue
        if problems:
            newest = folder / CHECKPOINT_NAME
            kept = ""
            if set_aside and newest.exists():
                os.replace(newest, newest.with_name(DAMAGED_NAME))
                kept = f"; the damaged file is kept as {DAMAGED_NAME}"
            if warn:
                warnings.warn(
                    f"{said}{'; '.join(problems)}; resuming from {name} at step "
                    f"{loaded[2].get('step')} (in {str(folder)!r}){kept}",
                    CheckpointWarning,
                    stacklevel=5,  # fit's caller
                )
        return path, loaded
    if problems:
        raise CheckpointError(
            f"{said}no intact checkpoint in {str(folder)!r}: {'; '.join(problems)}; move the "
            "folder away to start over",
            path=folder,
        )
    return None


# ---------------------------------------------------------------------------------------- folder
def open_checkpoint_dir(directory: str | os.PathLike[str], *, owner: str = "fit") -> CheckpointLock:
    """Make sure ``directory`` is a writable folder (creating it), lock it for this run and remove
    the temporary files a killed run left; before any training step, so that a bad folder fails
    at once rather than at the first checkpoint. Returns the held lock.
    """
    folder = Path(directory)

    def refuse(why: str) -> ParameterError:
        return ParameterError(
            f"{owner}: checkpoint_dir {str(folder)!r} {why}",
            owner=owner,
            param="checkpoint_dir",
            value=str(folder),
        )

    if folder.exists() and not folder.is_dir():
        raise refuse("is a file, not a folder; give a folder (it is created if missing)")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise refuse("cannot be created: a part of its path is a file") from None
    except OSError as exc:
        raise refuse(f"cannot be created ({exc.strerror or exc})") from None
    lock = CheckpointLock(folder, owner=owner, created=created)
    try:
        lock.acquire()
    except PermissionError:
        lock.undo_create()
        raise refuse("is not writable (permission denied)") from None
    except OSError as exc:
        lock.undo_create()
        raise refuse(f"is not writable ({exc.strerror or exc})") from None
    for leftover in folder.glob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    return lock


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid
    from the process that wrote a lock; ``None`` where ``/proc`` does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


class CheckpointLock:
    """``checkpoint.lock`` in a checkpoint folder, created with ``O_CREAT | O_EXCL``: held by one
    run at a time. It records the pid, host, process start and wall-clock start of that run."""

    def __init__(self, folder: Path, *, owner: str = "fit", created: bool = False):
        self.folder, self.owner, self.created = folder, owner, created
        self.path = folder / LOCK_NAME
        self.held = False
        self.me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()),
            "started": time.time(),
        }

    def _holder(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written, or garbage: judged by its age below
        return info if isinstance(info, dict) else {}

    def _stale(self, info: dict[str, Any]) -> bool:
        """The holder is gone: same host and its pid is not running (or is a newer process)."""
        if not info:  # unreadable: stale once it is old enough not to be a lock being written
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except FileNotFoundError:
                return True
        if info.get("host") != self.me["host"]:
            return False  # another machine's process cannot be checked from here
        pid = int(info.get("pid", -1))
        if pid <= 0 or not _alive(pid):
            return True
        start = info.get("process_start")
        now = _process_start(pid)
        return start is not None and now is not None and start != now

    def acquire(self) -> None:
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                info = self._holder()
                if info is None:
                    continue  # released meanwhile: try again
                if not self._stale(info):
                    raise CheckpointError(self._in_use(info), path=self.folder) from None
                self._take_over(info)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(self.me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return
        raise CheckpointError(
            f"{self.owner}: could not lock checkpoint_dir {str(self.folder)!r}: other runs keep taking it",
            path=self.folder,
        )

    def _in_use(self, info: dict[str, Any]) -> str:
        who = f"pid {info.get('pid', '?')} on host {info.get('host', '?')!r}"
        since = info.get("started")
        if isinstance(since, (int, float)) and math.isfinite(since):
            who += f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
        return (
            f"{self.owner}: checkpoint_dir {str(self.folder)!r} is in use by another run ({who}); two runs "
            f"must not write the same checkpoints: wait for that run, or give another checkpoint_dir "
            f"(if that run is gone, delete {str(self.path)!r})"
        )

    def _take_over(self, info: dict[str, Any]) -> None:
        # rename first, so that of two runs finding the same stale lock only one removes it
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = {}
        if info and moved != info:  # another run took the lock between our read and rename
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
            aside.unlink()
            raise CheckpointError(self._in_use(moved), path=self.folder)
        aside.unlink()
        who = (
            f"pid {info.get('pid', '?')} on host {info.get('host', '?')!r}" if info else "an unreadable lock"
        )
        warnings.warn(
            f"{self.owner}: took over the stale lock of checkpoint_dir {str(self.folder)!r} left by {who}, "
            "which is no longer running (a killed run)",
            CheckpointWarning,
            stacklevel=7,  # fit's caller
        )

    def release(self) -> None:
        """Remove the lock if this run holds it."""
        if not self.held:
            return
        self.held = False
        info = self._holder()
        if info and info.get("pid") == self.me["pid"] and info.get("started") == self.me["started"]:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def undo_create(self) -> None:
        """Remove the folder if this call created it and it is still empty (a refused call)."""
        if self.created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()
