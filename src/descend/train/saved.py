"""A trained model you can keep: :meth:`Run.save` / :func:`load_run` (``model.npz``), and
predictions streamed from a data file to a file of predictions (:func:`predict_file`).

**model.npz** holds everything prediction needs, and nothing that runs: the parameters, the
model's configuration (plain values; the model is rebuilt by :func:`descend.models.from_config`,
through the registry of models, never by importing or evaluating anything the file names), the
classes with their labels' dtype (strings, integers, bools, floats), the feature names in the
model's order, the target's name, the training data's other columns, the input scaler and the
target scaler, the epoch history, the notes and the fit quality. It is one ``.npz`` of plain
arrays plus a JSON header, written atomically with the SHA-256 of its content and read with
``allow_pickle=False`` (:func:`~descend.train.checkpoint.write_sealed` and
:func:`~descend.train.checkpoint.read_sealed`, which the checkpoints use too). On load the checksum
is verified and the content checked against the model it describes (parameter names, shapes and
dtypes as the model makes them; scaler and class counts): a damaged, truncated or foreign file
raises :class:`~descend.errors.RunFileError` saying what is wrong with it.

A run folder of ``descend train`` holds ``model.npz`` beside its other files; :meth:`Run.save`
writes (or replaces) that one file and leaves the others alone. :func:`load_run` also reads a
checkpoint folder (``checkpoint.npz``, or a run folder's ``checkpoints/``), from its newest
intact checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._validation import check_choice, check_int
from ..data import DataError, DataSource
from ..data.columns import check_columns, id_name, numeric_column
from ..errors import CheckpointError, ParameterError, RunFileError
from .checkpoint import CHECKPOINT_NAME, PREVIOUS_NAME, load_latest, read_sealed, write_sealed
from .fit import FitQuality, Run, TrainHistory, json_roundtrip
from .prepare import Labels, Scaler

__all__ = [
    "FORMAT",
    "MODEL_NAME",
    "PredictFileResult",
    "Predictions",
    "iter_predictions",
    "load_run",
    "predict_file",
    "save_run",
]

#: the file :meth:`Run.save` writes into a folder
MODEL_NAME = "model.npz"
#: what the header's ``format`` says, and the versions this code reads
FORMAT = "descend-model"
_VERSION = 1
_READABLE = (1,)
#: what a model file is called in messages
_WHAT = "descend model file (model.npz, written by Run.save)"


# ------------------------------------------------------------------------------------------ save
def save_run(run: Run, folder: str | os.PathLike[str]) -> Path:
    """Write ``run`` as ``folder/model.npz`` (see the module docstring); returns its path.

    The folder is created if needed; any other file in it is left alone, and a ``model.npz``
    already there is replaced atomically (a reader sees the old file or the new one, never a
    mix). A run holding NaN or inf is refused (``ValueError``).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(
            f"Run.save: {str(folder)!r} is a file; give a folder (model.npz is written into it)",
            owner="Run.save",
            param="folder",
            value=str(folder),
        )
    arrays: dict[str, np.ndarray] = {f"param/{k}": np.ascontiguousarray(v) for k, v in run.params.items()}
    if run.scaler is not None:
        arrays["scaler/mean"], arrays["scaler/scale"] = run.scaler.mean, run.scaler.scale
    if run.target_scaler is not None:
        arrays["target_scaler/mean"] = run.target_scaler.mean
        arrays["target_scaler/scale"] = run.target_scaler.scale
    if run.labels is not None:
        arrays["classes"] = np.ascontiguousarray(run.labels.classes)
    for k, v in run.history.epochs.items():
        arrays[f"history/{k}"] = np.asarray(v, dtype=np.float64)
    for name, a in arrays.items():
        if name.startswith(("param/", "scaler/", "target_scaler/")) and not np.isfinite(a).all():
            raise ValueError(f"Run.save: refusing to save a run whose {name} holds NaN or inf")
    from .. import __version__

    meta = {
        "format": FORMAT,
        "version": _VERSION,
        "descend": __version__,
        "model": run.model.config(),
        "n_features": int(run.n_features),
        "n_outputs": int(run.n_outputs),
        "feature_names": None if run.feature_names is None else list(run.feature_names),
        "target": run.target,
        "other_columns": list(run.other_columns),
        "label_dtype": None if run.labels is None else run.labels.dtype,
        "notes": list(run.notes),
        "quality": None if run.quality is None else run.quality.to_dict(),
        "stop_reason": run.stop_reason,
        "epochs_completed": int(run.epochs_completed),
        "steps_completed": int(run.steps_completed),
        "config": json_roundtrip(run.config),
    }
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, default=str))
    return write_sealed(folder / MODEL_NAME, arrays)


# ------------------------------------------------------------------------------------------ load
def load_run(path: str | os.PathLike[str]) -> Run:
    """The run saved at ``path``: a folder holding ``model.npz`` (a ``descend train`` run folder,
    or one :meth:`Run.save` wrote), that file itself, or a checkpoint folder (its newest intact
    checkpoint; a run folder without ``model.npz`` is read from its ``checkpoints/``).

    The run predicts bit for bit as the run that was saved; it keeps no optimizer state
    (``optimizer`` and ``state`` are None: resume a checkpoint to train on). Raises
    :class:`~descend.errors.RunFileError` for a path that holds no saved run, or a file that is
    damaged or not a descend model file (naming it and the damage).
    """
    p = Path(path)
    if p.is_dir():
        if (p / MODEL_NAME).exists():
            return _read_model(p / MODEL_NAME)
        for ckpt in (p, p / "checkpoints"):
            if (ckpt / CHECKPOINT_NAME).exists() or (ckpt / PREVIOUS_NAME).exists():
                return _from_checkpoint(ckpt)
        raise RunFileError(
            f"load_run: {str(p)!r} holds no saved run: no {MODEL_NAME} (written by Run.save and by "
            f"descend train) and no checkpoint ({CHECKPOINT_NAME})",
            path=p,
        )
    if not p.exists():
        raise RunFileError(f"load_run: no such file or folder {str(p)!r}", path=p)
    if p.name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        return _from_checkpoint(p.parent)
    return _read_model(p)


def _damaged(path: Path, why: str) -> RunFileError:
    return RunFileError(f"load_run: {str(path)!r} is damaged or not a {_WHAT}: {why}", path=path)


def _read_model(path: Path) -> Run:
    try:
        arrays = read_sealed(path, what=_WHAT, error=RunFileError)
    except RunFileError as exc:
        raise RunFileError(f"load_run: {exc}", path=path) from None
    if "meta" not in arrays:
        raise _damaged(path, "it has no header")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except ValueError:
        raise _damaged(path, "its header is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _damaged(
            path, f"its header names format {meta.get('format') if isinstance(meta, dict) else None!r}"
        )
    if meta.get("version") not in _READABLE:
        raise RunFileError(
            f"load_run: {str(path)!r} is a model file of version {meta.get('version')!r}, which this "
            f"descend does not read (it reads {', '.join(map(str, _READABLE))}); upgrade descend",
            path=path,
        )
    try:
        return _build(path, meta, arrays)
    except RunFileError:
        raise
    except Exception as exc:  # any other way a piece of the file does not fit the rest
        raise _damaged(path, f"{type(exc).__name__}: {exc}") from None


def _build(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Run:
    """A Run from a model file's header and arrays, every piece checked against the model."""
    from .. import models

    try:
        model = models.from_config(_plain(meta["model"]))
    except Exception as exc:  # the registry's errors: unknown model, bad hyperparameters
        raise _damaged(path, f"its model configuration is not valid ({exc})") from None
    params = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
    n_features = _count(meta, "n_features", path)
    n_outputs = _count(meta, "n_outputs", path)
    _check_params(path, model, params, n_features, n_outputs)
    scaler = _scaler(path, arrays, "scaler", n_features)
    target_scaler = _scaler(path, arrays, "target_scaler", n_outputs)
    labels = None
    if "classes" in arrays:
        label_dtype = meta.get("label_dtype")
        if label_dtype not in (None, "bool", "float16", "float32", "float64"):
            raise _damaged(path, f"its label dtype {label_dtype!r} is not one descend writes")
        labels = Labels(arrays["classes"], label_dtype)
        if labels.classes.ndim != 1 or labels.classes.dtype.kind not in "iuU":
            raise _damaged(path, f"its classes are not a list of labels ({labels.classes.dtype})")
        k = 2 if model.task == "binary" else n_outputs
        if len(labels.classes) != k:
            raise _damaged(path, f"it holds {len(labels.classes)} classes for a model of {k}")
    elif model.task != "regression":
        raise _damaged(path, f"it holds no classes for a {model.task} classifier")
    features = meta.get("feature_names")
    if features is not None:
        features = _names(path, features, "feature_names")
        if len(features) != n_features:
            raise _damaged(path, f"it names {len(features)} features for a model of {n_features}")
    target = meta.get("target")
    if target is not None and not isinstance(target, str):
        raise _damaged(path, "its target name is not text")
    epochs = {k[len("history/") :]: v.tolist() for k, v in arrays.items() if k.startswith("history/")}
    quality = meta.get("quality")
    return Run(
        model=model,
        params=params,
        optimizer=None,
        state=None,
        history=TrainHistory(epochs=epochs),
        config=meta.get("config") or {},
        n_features=n_features,
        n_outputs=n_outputs,
        stop_reason=str(meta.get("stop_reason", "")),
        epochs_completed=int(meta.get("epochs_completed", 0)),
        steps_completed=int(meta.get("steps_completed", 0)),
        labels=labels,
        scaler=scaler,
        notes=[str(n) for n in meta.get("notes") or ()],
        target_scaler=target_scaler,
        feature_names=features,
        target=target,
        other_columns=_names(path, meta.get("other_columns") or [], "other_columns"),
        quality=FitQuality(**quality) if isinstance(quality, dict) else None,
    )


def _plain(obj: Any) -> Any:
    """JSON values only (a header is data): lists stay lists, dicts keep string keys."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"unexpected value {obj!r}")


def _count(meta: dict[str, Any], key: str, path: Path) -> int:
    v = meta.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise _damaged(path, f"its {key} is {v!r}")
    return v


def _names(path: Path, names: Any, key: str) -> tuple[str, ...]:
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise _damaged(path, f"its {key} are not a list of column names")
    return tuple(names)


def _check_params(path: Path, model: Any, params: dict[str, np.ndarray], d: int, k: int) -> None:
    """The parameters are exactly those the model makes for ``d`` features and ``k`` outputs
    (compared by shape: nothing of the header's size is allocated, however large it claims)."""
    got = {n: (v.shape, v.dtype) for n, v in params.items()}
    expected = {n: (tuple(shape), model.dtype) for n, shape in model.param_shapes(d, k).items()}
    if got != expected:
        raise _damaged(
            path,
            f"its parameters {_shapes(got)} are not those of {model!r} with {d} features and {k} "
            f"outputs ({_shapes(expected)})",
        )
    for n, v in params.items():
        if not np.isfinite(v).all():
            raise _damaged(path, f"its parameter {n!r} holds NaN or inf")


def _shapes(spec: dict[str, tuple[tuple[int, ...], np.dtype]]) -> str:
    return ", ".join(f"{n} {shape} {dtype}" for n, (shape, dtype) in sorted(spec.items()))


def _scaler(path: Path, arrays: dict[str, np.ndarray], name: str, width: int) -> Scaler | None:
    mean, scale = arrays.get(f"{name}/mean"), arrays.get(f"{name}/scale")
    if mean is None and scale is None:
        return None
    if mean is None or scale is None:
        raise _damaged(path, f"its {name} lacks its mean or scale")
    for what, a in (("mean", mean), ("scale", scale)):
        if a.shape != (width,) or a.dtype != np.float64 or not np.isfinite(a).all():
            raise _damaged(path, f"its {name} {what} is not {width} finite float64 values")
    if not (scale > 0).all():
        raise _damaged(path, f"its {name} scale holds a value <= 0")
    return Scaler(mean, scale)


def _from_checkpoint(folder: Path) -> Run:
    """A run from the newest intact checkpoint of ``folder`` (what prediction needs of it)."""
    from .. import models

    try:
        latest = load_latest(folder, owner="load_run")
    except CheckpointError as exc:
        raise RunFileError(str(exc), path=folder) from None
    if latest is None:
        raise RunFileError(f"load_run: {str(folder)!r} holds no intact checkpoint", path=folder)
    ckpt, (params, _state, meta) = latest
    config, extra = meta.get("config") or {}, meta.get("extra") or {}
    if isinstance(extra.get("eval_params"), dict):
        # a rule whose model is not the point it takes gradients at (Schedule-Free): the
        # checkpoint's params are where training resumes, this is the model
        params = extra["eval_params"]
    try:
        model = models.from_config(_plain(config["model"]))
        first, last = model._weight_names()[0], model._weight_names()[-1]
        d, k = int(params[first].shape[0]), int(params[last].shape[1])
        _check_params(ckpt, model, params, d, k)
        labels = None
        if "classes" in extra:
            labels = Labels(np.asarray(extra["classes"]), extra.get("label_dtype"))
        scaler = target_scaler = None
        if "scaler_mean" in extra:
            scaler = Scaler(np.asarray(extra["scaler_mean"]), np.asarray(extra["scaler_scale"]))
        if "target_mean" in extra:
            target_scaler = Scaler(np.asarray(extra["target_mean"]), np.asarray(extra["target_scale"]))
        columns = extra.get("columns") or {}
        features = columns.get("features")
        if features is None and isinstance(config.get("data"), dict):
            features = config["data"].get(
                "features"
            )  # a file's columns, in checkpoints before names were kept
        history = TrainHistory.from_arrays(extra["history"]) if "history" in extra else TrainHistory()
    except RunFileError:
        raise
    except Exception as exc:
        raise RunFileError(
            f"load_run: {str(ckpt)!r} does not describe a model that can be rebuilt "
            f"({type(exc).__name__}: {exc})",
            path=ckpt,
        ) from None
    return Run(
        model=model,
        params=params,
        optimizer=None,
        state=None,
        history=history,
        config=config,
        n_features=d,
        n_outputs=k,
        stop_reason=f"loaded from checkpoint {str(ckpt)!r} at step {meta.get('step')}",
        epochs_completed=int(meta.get("epoch", 0)),
        steps_completed=int(meta.get("step", 0)),
        checkpoint=ckpt,
        labels=labels,
        scaler=scaler,
        target_scaler=target_scaler,
        feature_names=None if features is None else tuple(features),
        target=columns.get("target") or (config.get("data") or {}).get("target"),
        other_columns=tuple(columns.get("other") or ()),
    )


# ----------------------------------------------------------------------------------- predictions
class Predictions(NamedTuple):
    """Predictions for consecutive rows of a data file (see :func:`iter_predictions`)."""

    #: the id column's values as read (CSV: the text of each cell), or None without an id column
    ids: Any
    #: each row's data row number in its file, counting from 1 after the header
    rows: np.ndarray
    #: the file each row came from
    file: str
    #: predictions (labels or values, as :meth:`Run.predict` gives them) of the rows
    predictions: np.ndarray
    #: class probabilities (n, n_classes) for a classifier, else None
    proba: np.ndarray | None
    #: False for the rows whose features hold a missing value (``on_bad_rows="empty"``):
    #: their predictions are placeholders, written as empty cells
    valid: np.ndarray
    #: the id column's name (None without one)
    id_column: str | None
    #: rows of this stretch of the file left out for a missing value (``on_bad_rows="skip"``)
    skipped: int


class PredictFileResult(NamedTuple):
    """What :func:`predict_file` wrote."""

    path: Path
    rows: int
    #: rows left out for a missing value (``on_bad_rows="skip"``)
    skipped: int
    #: rows written with empty predictions (``on_bad_rows="empty"``)
    empty: int
    columns: tuple[str, ...]
    id_column: str | None


ON_BAD_ROWS = ("raise", "skip", "empty")


def _file_columns(path: Path, kind: str, encoding: str) -> list[str]:
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:
            raise DataError(
                f"predict: could not read {str(path)!r} as Parquet: {exc}", file=str(path)
            ) from None
    import pyarrow.csv as pcsv

    from ..data.files import _delimiter

    try:
        with pcsv.open_csv(
            str(path),
            read_options=pcsv.ReadOptions(encoding=encoding, block_size=1 << 20),
            parse_options=pcsv.ParseOptions(delimiter=_delimiter(path), newlines_in_values=True),
        ) as reader:
            return list(reader.schema.names)
    except Exception as exc:
        raise DataError(
            f"predict: could not read the header of {str(path)!r}: {exc}", file=str(path)
        ) from None


def _batches(
    path: Path,
    kind: str,
    columns: list[str],
    features: Sequence[str],
    id_column: str | None,
    batch_rows: int,
    encoding: str,
) -> Iterator[Any]:
    """Record batches of ``columns`` of one file, in file order (features read as numbers, a
    CSV's id column as text)."""
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as pf:
            yield from pf.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False)
        return
    import pyarrow.csv as pcsv

    from ..data.files import _delimiter

    types = {c: pa.float64() for c in features}
    if id_column is not None and id_column not in types:  # the text as written (leading zeros kept)
        types[id_column] = pa.string()
    with pcsv.open_csv(
        str(path),
        read_options=pcsv.ReadOptions(encoding=encoding, use_threads=False),
        parse_options=pcsv.ParseOptions(
            delimiter=_delimiter(path), newlines_in_values=True, ignore_empty_lines=True
        ),
        convert_options=pcsv.ConvertOptions(
            column_types=types, include_columns=columns, strings_can_be_null=True
        ),
    ) as reader:
        for rb in reader:
            for lo in range(0, rb.num_rows, batch_rows):
                yield rb.slice(lo, batch_rows)


def _features_of(run: Run, names: list[str], id_column: str | None, where: str) -> list[str]:
    """The feature columns of a file with columns ``names``, in the model's order."""
    owner = "predict"
    if run.feature_names is not None:
        ignorable = [
            *run.other_columns,
            *((run.target,) if run.target else ()),
            *((id_column,) if id_column else ()),
        ]
        check_columns(
            names,
            run.feature_names,
            owner=owner,
            ignorable=ignorable,
            where=where,
            advice="leave the others out of the file, or name its id column with id_column='COL'",
        )
        return list(run.feature_names)
    # trained on arrays without names: the file's columns by position, but for the id and target
    feats = [c for c in names if c != id_column and c != run.target and not id_name(c)]
    if len(feats) != run.n_features:
        raise DataError(
            f"{owner}: the model was trained on {run.n_features} unnamed features, {where} has "
            f"{len(feats)} feature columns ({', '.join(map(repr, feats))}); they are taken by position"
        )
    return feats


class _Plan(NamedTuple):
    files: list[Path]
    kind: str
    names: list[str]
    id_column: str | None
    features: list[str]


def _plan(run: Run, data: Any, id_column: str | None, encoding: str) -> _Plan:
    """Which files, and which of their columns are the id and the features."""
    from ..data.files import _expand

    owner = "predict"
    if isinstance(data, DataSource):
        raise TypeError(f"{owner}: give a file path; for a descend.data source use run.predict(source)")
    files, kind = _expand(data)
    if kind not in ("csv", "parquet"):
        raise ParameterError(
            f"{owner}: {os.fspath(data)!r} is not a CSV or Parquet file",
            owner=owner,
            param="data",
            value=str(data),
        )
    names = _file_columns(files[0], kind, encoding)
    if id_column is not None and id_column not in names:
        raise ParameterError(
            f"{owner}: id column {id_column!r} is not in {str(files[0])!r}; columns: {', '.join(names)}",
            owner=owner,
            param="id_column",
            value=id_column,
        )
    if id_column is None:
        id_column = next((c for c in names if id_name(c) and c not in (run.feature_names or ())), None)
    features = _features_of(run, names, id_column, repr(str(files[0])))
    return _Plan(files, kind, names, id_column, features)


def iter_predictions(
    run: Run,
    data: str | os.PathLike[str],
    *,
    id_column: str | None = None,
    batch_rows: int = 1 << 16,
    on_bad_rows: str = "raise",
    encoding: str = "utf-8",
) -> Iterator[Predictions]:
    """Predictions of ``run`` for the rows of a CSV or Parquet file (or a folder or glob of
    them, as :func:`descend.data.open` takes), streamed: at most ``batch_rows`` rows at a time,
    in file order, so memory stays bounded whatever the file's size.

    The file's columns are matched to the run's features by name (a missing feature, or a
    column that was not in the training data and is not an identifier by its name, is a
    :class:`~descend.data.DataError` naming it); the target column may be there or not.
    ``id_column`` names the column to carry beside each prediction; None takes the first column
    whose name is an identifier's (``id``, ``customer_id``, ...: :mod:`descend.data.columns`), if
    any. A missing or non-finite feature value is an error naming the file, row and column
    (``on_bad_rows="raise"``), or its row is left out (``"skip"``) or predicted as an empty cell
    (``"empty"``).
    """
    from ..data.files import check_encoding

    owner = "predict"
    batch_rows = check_int(owner, "batch_rows", batch_rows, low=1)
    check_choice(owner, "on_bad_rows", on_bad_rows, ON_BAD_ROWS)
    encoding = check_encoding(encoding)
    files, kind, names, id_column, features = _plan(run, data, id_column, encoding)
    columns = list(dict.fromkeys([*([id_column] if id_column else []), *features]))  # an id may be a feature
    classifier = run.labels is not None
    for f in files:
        if f is not files[0] and (other := _file_columns(f, kind, encoding)) != names:
            raise DataError(
                f"{owner}: {str(f)!r} and {str(files[0])!r} have different columns "
                f"({', '.join(other)} vs {', '.join(names)})",
                file=str(f),
            )
        line = 0
        try:
            for rb in _batches(f, kind, columns, features, id_column, batch_rows, encoding):
                n = rb.num_rows
                rows = np.arange(line + 1, line + n + 1)
                line += n
                X = np.empty((n, len(features)))
                for j, c in enumerate(features):
                    X[:, j] = numeric_column(rb.column(c), owner=owner, name=c)
                with np.errstate(invalid="ignore"):
                    ok = np.isfinite(X).all(axis=1)
                ids = rb.column(id_column) if id_column else None
                dropped = 0
                if not ok.all():
                    if on_bad_rows == "raise":
                        r = int(np.argmax(~ok))
                        j = int(np.argmax(~np.isfinite(X[r])))
                        what = "a missing value" if np.isnan(X[r, j]) else f"the value {X[r, j]!r}"
                        raise DataError(
                            f"{f}: row {rows[r]}, column {features[j]!r}: {what} (fix the file, or "
                            "pass on_bad_rows='skip' or 'empty')",
                            file=str(f),
                            row=int(rows[r]),
                            column=features[j],
                        )
                    if on_bad_rows == "skip":
                        keep = np.flatnonzero(ok)
                        dropped = n - len(keep)
                        X, rows = X[keep], rows[keep]
                        ids = None if ids is None else ids.take(keep)
                        ok = ok[keep]
                    else:
                        X[~ok] = 0.0  # placeholders, predicted and then written as empty cells
                Xs = run.scale(X)
                pred = run._predict_scaled(Xs) if len(X) else run._predict_scaled(Xs[:0])
                proba = run.model.predict_proba(run.params, Xs) if classifier else None
                yield Predictions(ids, rows, f.name, pred, proba, ok, id_column, dropped)
        except DataError:
            raise
        except Exception as exc:  # pyarrow's parse and conversion errors: a cell that is not a number
            if type(exc).__name__ not in ("ArrowInvalid", "ArrowTypeError", "ArrowNotImplementedError"):
                raise
            raise DataError(f"{f}: {exc}", file=str(f)) from None


def predict_file(
    run: Run,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    id_column: str | None = None,
    batch_rows: int = 1 << 16,
    on_bad_rows: str = "raise",
    encoding: str = "utf-8",
) -> PredictFileResult:
    """Write ``run``'s predictions for the rows of ``data`` (CSV or Parquet) to ``out``, streamed
    (:func:`iter_predictions`: bounded memory, columns matched by name, ``id_column`` and
    ``on_bad_rows`` as there).

    ``out`` ends in ``.csv`` (``.csv.gz`` compressed) or ``.parquet``. Its columns: the id
    column under its own name (or ``row``, each row's data row number in its file, when there is
    no id column; ``file`` too when ``data`` names several files), ``prediction`` (labels for a
    classifier, values in the target's units for regression), and for a classifier one
    ``proba_<class>`` column per class. The file is written whole or not at all (a temporary
    file renamed into place); ``out`` must not be one of the data files.
    """
    import pyarrow as pa

    from ..data.files import _expand

    owner = "predict"
    out = Path(out)
    name = out.name.lower()
    if name.endswith((".parquet", ".pq")):
        fmt = "parquet"
    elif name.endswith((".csv", ".csv.gz")):
        fmt = "csv.gz" if name.endswith(".gz") else "csv"
    else:
        raise ParameterError(
            f"{owner}: out must end in .csv, .csv.gz or .parquet, got {str(out)!r}",
            owner=owner,
            param="out",
            value=str(out),
        )
    files, _ = _expand(data)
    if any(out.resolve() == f.resolve() for f in files):
        raise ParameterError(
            f"{owner}: out {str(out)!r} is one of the data files; give another file",
            owner=owner,
            param="out",
            value=str(out),
        )
    many = len(files) > 1
    classes = run.classes
    proba_names = [] if classes is None else [f"proba_{c}" for c in classes.tolist()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    rows = skipped = empty = 0
    id_used: str | None = None
    schema = None
    try:
        with contextlib.ExitStack() as stack:
            writer = None
            for chunk in iter_predictions(
                run,
                data,
                id_column=id_column,
                batch_rows=batch_rows,
                on_bad_rows=on_bad_rows,
                encoding=encoding,
            ):
                id_used = chunk.id_column
                skipped += chunk.skipped
                cols: dict[str, Any] = {}
                if id_used is not None:
                    cols[id_used] = chunk.ids
                else:
                    cols["row"] = pa.array(chunk.rows, pa.int64())
                if many:
                    cols["file"] = pa.array([chunk.file] * len(chunk.rows), pa.string())
                mask = None if chunk.valid.all() else ~chunk.valid
                cols["prediction"] = pa.array(chunk.predictions, mask=mask)
                if chunk.proba is not None:
                    for j, pn in enumerate(proba_names):
                        cols[pn] = pa.array(np.ascontiguousarray(chunk.proba[:, j]), mask=mask)
                table = pa.table(cols)
                if writer is None:
                    schema = table.schema
                    writer = stack.enter_context(_writer(fmt, tmp, schema))
                writer.write_table(table.cast(schema))
                rows += len(chunk.rows)
                empty += int((~chunk.valid).sum())
            if writer is None:  # a file without data rows: still a file, with a header
                schema = _empty_schema(run, id_column, many, proba_names)
                writer = stack.enter_context(_writer(fmt, tmp, schema))
                writer.write_table(schema.empty_table())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return PredictFileResult(out, rows, skipped, empty, tuple(schema.names), id_used)


def _empty_schema(run: Run, id_column: str | None, many: bool, proba_names: list[str]) -> Any:
    import pyarrow as pa

    fields = [pa.field(id_column, pa.string()) if id_column else pa.field("row", pa.int64())]
    if many:
        fields.append(pa.field("file", pa.string()))
    dtype = pa.from_numpy_dtype(run.model.dtype)
    classes = run.classes
    fields.append(pa.field("prediction", dtype if classes is None else pa.from_numpy_dtype(classes.dtype)))
    fields += [pa.field(pn, dtype) for pn in proba_names]
    return pa.schema(fields)


@contextlib.contextmanager
def _writer(fmt: str, path: Path, schema: Any) -> Iterator[Any]:
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(str(path), schema) as w:
            yield w
        return
    import pyarrow.csv as pcsv

    sink = pa.OSFile(str(path), "wb")
    stream = pa.CompressedOutputStream(sink, "gzip") if fmt == "csv.gz" else sink
    try:
        with pcsv.CSVWriter(stream, schema, write_options=pcsv.WriteOptions(quoting_style="needed")) as w:
            yield w
    finally:
        stream.close()
