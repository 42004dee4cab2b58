"""fit()'s checkpoints under damage and misuse: the previous checkpoint kept, checksums, fallback,
no NaN/inf, resume refusals, the folder lock, leftovers of a kill, bad folders, permissions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.errors import CheckpointError, CheckpointWarning, ParameterError
from descend.train.checkpoint import (
    CHECKPOINT_NAME,
    DAMAGED_NAME,
    LOCK_NAME,
    PREVIOUS_NAME,
    read_checkpoint,
    write_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]


def binary_data(n=100, d=4, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


KW = dict(optimizer="adam", lr=0.01, batch_size=16, progress=False)  # 100 rows: 7 batches an epoch


def train(tmp_path, **kw):
    X, y = binary_data()
    return ds.fit(ds.models.LogisticRegression(), (X, y), checkpoint_dir=tmp_path, **{**KW, **kw})


def straight(**kw):
    X, y = binary_data()
    return ds.fit(ds.models.LogisticRegression(), (X, y), **{**KW, **kw})


def same_params(a, b):
    return all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)


# ------------------------------------------------------------------ two copies, checksums, fallback


def test_the_previous_checkpoint_is_kept_beside_the_newest(tmp_path):
    train(tmp_path, epochs=2, checkpoint_every=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME, PREVIOUS_NAME]
    newest = read_checkpoint(tmp_path / CHECKPOINT_NAME)[2]
    previous = read_checkpoint(tmp_path / PREVIOUS_NAME)[2]
    assert newest["step"] == 14 and newest["finished"]
    assert previous["step"] == 14 and not previous["finished"]  # the epoch-end save before it


def test_a_failed_write_leaves_both_checkpoints_and_no_temp_file(tmp_path, monkeypatch):
    train(tmp_path, epochs=2, checkpoint_every=5)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("descend.train.checkpoint.np.savez", broken_savez)
    params, state, meta = read_checkpoint(tmp_path / CHECKPOINT_NAME)
    with pytest.raises(OSError, match="No space left"):
        write_checkpoint(tmp_path, params=params, state=state, header=meta, extra={})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


def _garbage(path):
    path.write_bytes(b"this is not a checkpoint at all\n" * 20)


@pytest.mark.parametrize(
    "damage", [_truncate, _flip_a_byte, _garbage], ids=["truncated", "flipped", "garbage"]
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    run = train(tmp_path, epochs=3, checkpoint_every=5, max_steps=10)
    assert run.steps_completed == 10
    folder = tmp_path
    old_step = read_checkpoint(folder / PREVIOUS_NAME)[2]["step"]
    damage(folder / CHECKPOINT_NAME)
    with pytest.warns(CheckpointWarning) as caught:
        resumed = train(folder, epochs=3, checkpoint_every=5, resume=True)
    text = " ".join(str(w.message) for w in caught)
    assert f"{CHECKPOINT_NAME} is damaged" in text and PREVIOUS_NAME in text
    assert f"step {old_step}" in text
    assert "allow_pickle" not in text
    assert resumed.resumed_from_step == old_step
    assert same_params(resumed, straight(epochs=3))  # still bit-exact from the older state
    # the damaged file was set aside, so it never became the previous checkpoint
    assert (folder / DAMAGED_NAME).exists()
    for name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        read_checkpoint(folder / name)


def test_no_good_checkpoint_is_a_clear_error_without_numpy_advice(tmp_path):
    train(tmp_path, epochs=2, checkpoint_every=5)
    _garbage(tmp_path / CHECKPOINT_NAME)
    _truncate(tmp_path / PREVIOUS_NAME)
    with pytest.raises(CheckpointError) as exc:
        train(tmp_path, epochs=3, resume=True)
    text = str(exc.value)
    assert CHECKPOINT_NAME in text and PREVIOUS_NAME in text and "damaged" in text
    assert "allow_pickle" not in text and "pickle" not in text


def test_reading_a_file_that_is_not_a_checkpoint_never_shows_numpy_advice(tmp_path):
    path = tmp_path / "x.npz"
    _garbage(path)
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(path)
    assert "allow_pickle" not in str(exc.value) and "x.npz" in str(exc.value)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="not a descend checkpoint") as exc:
        read_checkpoint(tmp_path / "obj.npy")
    assert "allow_pickle" not in str(exc.value)
    np.savez(tmp_path / "objs.npz", a=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="Python objects") as exc:
        read_checkpoint(tmp_path / "objs.npz")
    assert "allow_pickle" not in str(exc.value)


def test_a_checksum_mismatch_is_found_even_when_the_zip_is_intact(tmp_path):
    train(tmp_path, epochs=1)
    path = tmp_path / CHECKPOINT_NAME
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/W"] = arrays["param/W"] + 1  # a valid archive whose content changed
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(path)


# ------------------------------------------------------------------ no NaN or inf anywhere


def test_resuming_at_an_epoch_boundary_writes_no_nan_into_the_history(tmp_path):
    from descend.train.callbacks import Callback

    class Kill(Callback):  # dies after the epoch's last step was checkpointed, before the epoch row
        def on_epoch_end(self, run, info):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, epochs=2, checkpoint_every=7, callbacks=[Kill()])
    meta = read_checkpoint(tmp_path / CHECKPOINT_NAME)[2]
    assert (meta["epoch"], meta["batch"]) == (0, 7)
    run = train(tmp_path, epochs=2, checkpoint_every=7, resume=True)
    assert np.all(np.isfinite(run.history.epoch_array("lr")))
    assert run.history.epochs["lr"][0] == run.history.steps["lr"][6]
    history = read_checkpoint(tmp_path / CHECKPOINT_NAME)[2]["extra"]["history"]
    assert all(np.all(np.isfinite(v)) for v in history.values())
    assert same_params(run, straight(epochs=2))


def test_an_optimizer_state_that_overflows_is_divergence_not_a_completed_run(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 1e10  # gradients near 1e20: Adam's v = g^2 overflows float32
    y = X @ np.ones(3)
    with pytest.raises(ds.DivergenceError, match="optimizer state") as exc:
        ds.fit(
            ds.models.LinearRegression(),
            (X, y),
            optimizer="adam",
            lr=1e-3,
            batch_size=32,
            epochs=2,
            standardize=False,
            checkpoint_dir=tmp_path,
            checkpoint_every=1,
            progress=False,
        )
    state = exc.value.run.state
    assert all(np.all(np.isfinite(b)) for bufs in state.buffers.values() for b in bufs)
    for name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        if (tmp_path / name).exists():
            _, saved, _ = read_checkpoint(tmp_path / name)
            assert all(np.all(np.isfinite(b)) for bufs in saved.buffers.values() for b in bufs)


def test_write_checkpoint_refuses_non_finite_values(tmp_path):
    run = straight(epochs=1)
    params = {k: v.copy() for k, v in run.params.items()}
    params["W"][0] = np.nan
    with pytest.raises(ValueError, match="param/W"):
        write_checkpoint(tmp_path, params=params, state=run.state, header={}, extra={})
    with pytest.raises(ValueError, match="extra"):
        write_checkpoint(tmp_path, params=run.params, state=run.state, header={}, extra={"x": float("inf")})
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ runs that went further


def test_resuming_a_longer_run_is_refused_naming_both_epoch_counts(tmp_path):
    train(tmp_path, epochs=10, checkpoint_every=7)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(ParameterError, match=r"10 epochs.*epochs=5") as exc:
        train(tmp_path, epochs=5, resume=True)
    assert exc.value.param == "epochs"
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    same = train(tmp_path, epochs=10, resume=True)  # exactly as far: that run, unchanged
    assert same.steps_completed == 70 and same_params(same, straight(epochs=10))
    longer = train(tmp_path, epochs=15, resume=True)
    assert longer.steps_completed == 105 and same_params(longer, straight(epochs=15))


def test_resuming_a_longer_run_is_refused_naming_both_step_counts(tmp_path):
    train(tmp_path, epochs=10, max_steps=30, checkpoint_every=7)
    with pytest.raises(ParameterError, match=r"step 30.*max_steps=20") as exc:
        train(tmp_path, epochs=10, max_steps=20, resume=True)
    assert exc.value.param == "max_steps"
    same = train(tmp_path, epochs=10, max_steps=30, resume=True)
    assert same.steps_completed == 30
    more = train(tmp_path, epochs=10, max_steps=40, resume=True)
    assert more.steps_completed == 40 and same_params(more, straight(epochs=10, max_steps=40))


def test_resume_without_a_checkpoint_says_it_starts_fresh(tmp_path):
    with pytest.warns(CheckpointWarning, match="starts fresh"):
        run = train(tmp_path / "new", epochs=1, resume=True)
    assert any("starts fresh" in n for n in run.notes)
    assert same_params(run, straight(epochs=1))


# ------------------------------------------------------------------ one run per folder


HOLDER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import descend as ds

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    y = (X[:, 0] > 0).astype(int)

    def tick(info):
        if info["step"] == 1:
            print("training", flush=True)
        time.sleep(0.05)

    ds.fit(ds.models.LogisticRegression(), (X, y), batch_size=16, epochs=1000, checkpoint_dir=sys.argv[1],
           checkpoint_every=5, callbacks=[tick], progress=False)
    """
)


def _start_holder(tmp_path, folder):
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "training"
    return proc


def test_a_second_run_on_the_same_folder_is_refused_and_a_killed_runs_lock_is_taken_over(tmp_path):
    folder = tmp_path / "ckpt"
    proc = _start_holder(tmp_path, folder)
    try:
        with pytest.raises(CheckpointError, match=r"in use by another run \(pid \d+") as exc:
            train(folder, epochs=1)
        assert str(proc.pid) in str(exc.value)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
    assert (folder / LOCK_NAME).exists()  # a kill leaves the lock behind
    with pytest.warns(CheckpointWarning, match=rf"stale lock.*pid {proc.pid}"):
        train(folder, epochs=1)
    assert not (folder / LOCK_NAME).exists()


def test_the_lock_is_released_when_fit_fails(tmp_path):
    X, y = binary_data()
    with pytest.raises(ds.DivergenceError):
        ds.fit(
            ds.models.LinearRegression(),
            (X * 1e30, y.astype(float)),
            optimizer="sgd",
            lr=1.0,
            standardize=False,
            checkpoint_dir=tmp_path,
            progress=False,
        )
    with pytest.raises(ValueError):
        ds.fit(  # 3 classes for a binary model: refused after the folder was locked
            ds.models.LogisticRegression(),
            (X, np.arange(100) % 3),
            checkpoint_dir=tmp_path / "b",
            progress=False,
        )
    assert not (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / "b").exists()  # a refused call leaves no folder behind


def test_temporary_files_left_by_a_kill_are_removed(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    left = [tmp_path / f".{CHECKPOINT_NAME}.123.ab12cd34.tmp", tmp_path / f".{CHECKPOINT_NAME}.x9y8z7.tmp"]
    for p in left:
        p.write_bytes(b"PK partial")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    train(tmp_path, epochs=1)
    assert not any(p.exists() for p in left)
    assert keep.read_text() == "mine"


# ------------------------------------------------------------------ the folder itself


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_a_bad_checkpoint_dir_fails_before_the_first_step(tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    folder = blocker if where == "file" else blocker / "ckpt"
    steps = []
    with pytest.raises(ParameterError, match="checkpoint_dir") as exc:
        train(folder, epochs=1, callbacks=[lambda info: steps.append(info["step"])])
    assert exc.value.param == "checkpoint_dir" and str(folder) in str(exc.value)
    assert steps == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_checkpoint_dir_fails_before_the_first_step(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    steps = []
    try:
        with pytest.raises(ParameterError, match="not writable"):
            train(folder, epochs=1, callbacks=[lambda info: steps.append(info["step"])])
    finally:
        folder.chmod(0o755)
    assert steps == []


def test_an_unwritable_checkpoint_dir_fails_before_the_first_step_even_as_root(tmp_path, monkeypatch):
    real_open = os.open

    def refusing_open(path, flags, *args, **kw):  # what a read-only folder answers a non-root user
        if str(path).startswith(str(tmp_path / "ro")) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "open", refusing_open)
    steps = []
    with pytest.raises(ParameterError, match=r"checkpoint_dir .*ro' is not writable") as exc:
        train(tmp_path / "ro", epochs=1, callbacks=[lambda info: steps.append(info["step"])])
    assert exc.value.param == "checkpoint_dir" and steps == []
    assert (tmp_path / "ro").is_dir()  # a folder that was there stays


def test_checkpoint_files_get_the_run_folders_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        train(tmp_path, epochs=2, checkpoint_every=5)
        (tmp_path / "other.txt").write_text("written like the rest of a run folder")
    finally:
        os.umask(old)
    mode = (tmp_path / "other.txt").stat().st_mode & 0o777
    assert mode == 0o644
    for name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_the_checkpoint_write_is_durable_in_order(tmp_path, monkeypatch):
    """The new file is complete and fsynced before the older one is dropped."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        return real_fsync(fd)

    def replace(a, b):
        events.append(f"replace {Path(a).name} -> {Path(b).name}")
        return real_replace(a, b)

    train(tmp_path, epochs=1)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    run = straight(epochs=1)
    write_checkpoint(tmp_path, params=run.params, state=run.state, header={"step": 1}, extra={})
    assert events[0] == "fsync"  # the temp file's content
    assert events[1] == f"replace {CHECKPOINT_NAME} -> {PREVIOUS_NAME}"
    assert events[2].endswith(f"-> {CHECKPOINT_NAME}")
    assert events[3] == "fsync"  # the folder


def test_the_command_lines_resume_reads_the_previous_checkpoint_too(tmp_path):
    from descend import workflows

    folder = tmp_path / "run" / "checkpoints"
    assert workflows.checkpoint_step(tmp_path / "run") is None
    train(folder, epochs=3, checkpoint_every=5, max_steps=10)
    _truncate(folder / CHECKPOINT_NAME)
    assert workflows.checkpoint_step(tmp_path / "run") == 10
    assert (folder / CHECKPOINT_NAME).exists()  # a look does not move anything
    _garbage(folder / PREVIOUS_NAME)
    with pytest.raises(CheckpointError, match=r"^no intact checkpoint in .*checkpoint.npz is damaged"):
        workflows.checkpoint_step(tmp_path / "run")
