"""Parquet and CSV files as data sources, streamed by row group or byte range (never loaded whole).

**Shards.** A Parquet file's shards are its row groups. A CSV file (``.csv`` comma-separated,
``.tsv`` tab-separated, each also compressed: ``.gz``, ``.bz2``, ``.zst``, ``.lz4``) is indexed
once when its layout is first needed, in bounded memory:

- Its bytes are scanned for line ends (no parsing). A blank line (``""`` or ``"\\r"`` between
  line ends, trailing ones included) is no row, as pyarrow skips it; every other line is one.
- A line end ends a row unless a quoted field holds it. So when the data holds a quote
  character, or a lone ``"\\r"`` (which pyarrow also takes as a line end), pyarrow's parser
  counts the rows a second time. A row starts at a line start, so the parser finds as many
  rows as there are non-blank lines only when every line start is a row start; then, and when
  the data holds no quote at all, a plain file is cut into shards of about
  :data:`CSV_SHARD_BYTES` at line ends, each parsed from its own byte range. Otherwise (a
  field holds a line break, or a lone ``"\\r"`` ends a line) the file is one shard read as a
  stream from its start, and its row count is the parser's.
- A compressed file is always one stream (it cannot seek), counted the same way.

**Trust.** Each file's size, modification time and inode (:class:`FileStamp`), and a Parquet
file's row groups, are recorded at open and checked again before each epoch, when a shard
starts, and after each piece of a shard is read, before it is passed on: a file that changed
raises :class:`FileChangedError` naming it and what changed, so no piece read after a change
is trained on. A shard that yields other rows than were counted is an error too, so an
epoch never ends short of the rows the source reported. (What stat cannot see, a rewrite in
place of the same size within one tick of the file system's clock, is caught only where it
changes a Parquet footer or a shard's row count.)

**Text.** Cells are UTF-8 unless ``encoding`` names another ASCII-compatible codec (pyarrow
transcodes it). Bytes that do not decode in a column that is read are an error naming the
file and the row (or, in the header, the line and byte offset), whatever ``on_bad_rows`` says:
the fix is the file's encoding, not dropping its rows. Duplicate column names are an error
when a duplicated column would be read.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ParameterError
from .base import Chunk, DataError, DataSource, Summary, _Accumulator
from .columns import id_name, id_reason

__all__ = ["CSVSource", "FileChangedError", "FileSource", "FileStamp", "ParquetSource", "Shard"]

#: rows converted at a time while a shard is read
CHUNK_ROWS = 1 << 16
#: a plain CSV is cut into shards of about this many bytes (at line ends)
CSV_SHARD_BYTES = 8 << 20
#: pyarrow's block when a CSV is streamed (its record batches are about this size)
STREAM_BLOCK_BYTES = 4 << 20
#: bytes parsed at open to learn a CSV's column types
PEEK_BYTES = 1 << 20
ON_BAD_ROWS = ("raise", "skip")
#: CSV suffixes and their delimiters; any of them may carry a compression suffix
CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}
#: compression suffixes pyarrow's input streams detect and decode
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
#: what data.open reads, for messages
SUPPORTED = ".parquet (.pq, .parq), .csv or .tsv (also as .gz, .bz2, .zst, .lz4), .npy"


def _pa():
    import pyarrow as pa

    return pa


def _is_numeric(t: Any) -> bool:
    pa = _pa()
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _numbers(column: Any) -> np.ndarray:
    """A pyarrow numeric column as a float array, NaN for missing values (no copy when it can)."""
    pa = _pa()
    t = column.type
    if pa.types.is_floating(t) and column.null_count == 0:
        return column.to_numpy()
    if pa.types.is_boolean(t):
        column = column.cast(pa.int8())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _names(items: Sequence[str]) -> str:
    return ", ".join(map(repr, items))


# ---------------------------------------------------------------------------------- change detection


class FileStamp(NamedTuple):
    """What ``os.stat`` says of a file: a file whose stamp differs has changed (or was replaced)."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)

    def change_from(self, old: FileStamp) -> str:
        """What changed since ``old``, in words."""
        if self.size != old.size:
            return f"size {old.size} -> {self.size} bytes"
        if self.inode != old.inode:
            return "replaced by another file of the same size"
        return "modified: same size, new modification time"


class FileChangedError(DataError):
    """A file changed after :func:`descend.data.open` counted its rows.

    Its layout (row groups, byte ranges, row counts) is no longer known, so nothing more is
    read from it: reopen it to train on what it holds now.
    """


def _changed(path: Path, what: str) -> FileChangedError:
    return FileChangedError(
        f"{str(path)!r} changed after ds.data.open counted its rows ({what}); "
        "reopen it with ds.data.open to train on what it holds now",
        file=str(path),
    )


class Shard(NamedTuple):
    """A unit of reading: a row group, a byte range of a CSV, or a whole CSV stream."""

    #: index of its file in the source's ``paths``
    file: int
    #: Parquet: the row group number; CSV: a :class:`ByteRange`, or None for the whole stream
    where: Any
    #: rows as stored, bad rows included
    rows: int
    #: global index of its first row
    first: int


class ByteRange(NamedTuple):
    """Bytes ``[offset, offset + length)`` of a plain CSV: whole rows, parsed on their own."""

    offset: int
    length: int


class _Tally:
    """Rows of one shard read that the parser dropped (wrong number of fields)."""

    def __init__(self) -> None:
        self.dropped = 0


class FileSource(DataSource):
    """What Parquet and CSV sources share: column choice, conversion, bad rows, holdout counts,
    and the check that each file is still the one that was opened.

    Subclasses list their shards (:class:`Shard`) from :meth:`_layout` and yield pyarrow
    tables of the needed columns from :meth:`_tables`; this class turns them into checked
    chunks.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        target: str,
        features: Sequence[str] | None,
        dtype: str | None,
        on_bad_rows: str,
        window: int,
        kind: str,
        drop: Sequence[str] | None = None,
    ):
        self.paths = list(paths)
        # first of all: a change after this moment, while the layout is read too, is seen
        self._stamps = [FileStamp.of(p) for p in self.paths]
        self.target = target
        self.on_bad_rows = on_bad_rows
        self.window = window
        self.kind = kind
        self._requested_features = None if features is None else list(features)
        self._drop = [] if drop is None else list(drop)
        #: every column of the files, in order (the features, the target and the rest)
        self.columns: tuple[str, ...] = ()
        #: columns left out of the features by default, each with the reason (identifiers)
        self.excluded: dict[str, str] = {}
        #: what ds.data.open chose on its own and why (fit copies them into ``run.notes``)
        self.notes: list[str] = []
        self._dtype_arg = dtype
        self._kept: list[int] | None = None
        #: rows skipped per file in one whole pass (``on_bad_rows="skip"``), known after a pass
        self.skipped: dict[str, int] = {}
        self._skip_count: dict[str, int] = {}
        first = self.paths[0].name
        more = f" (+{len(self.paths) - 1} more)" if len(self.paths) > 1 else ""
        self.description = f"{first}{more}"

    # -- columns ---------------------------------------------------------------------------------
    def _choose_columns(
        self, names: list[str], types: dict[str, Any], where: str, samples: dict[str, Any] | None = None
    ) -> None:
        """The feature columns: those asked for, or every column but the target, the identifiers
        (by name, or by ``samples``: ``{column: (first values, "text" | "integer")}``, see
        :mod:`descend.data.columns`) and ``drop``."""
        self._refuse_duplicates(names, where)
        self.columns = tuple(names)
        if self.target not in names:
            raise ParameterError(
                f"data.open: target column {self.target!r} is not in {where}; columns: {', '.join(names)}",
                owner="data.open",
                param="target",
                value=self.target,
            )
        if self._drop:
            self._check_drop(names, where)
        if self._requested_features is None:
            feats, counts = [], []
            for c in names:
                if c == self.target or c in self._drop:
                    continue
                values, kind = (samples or {}).get(c, (None, None))
                why = id_reason(c, values, kind)
                if why is None:
                    feats.append(c)
                elif kind == "integer" and not id_name(c):
                    counts.append((c, why))  # a row count, unless nothing else is left to learn from
                else:
                    self.excluded[c] = why
            if counts and not any(_is_numeric(types[c]) for c in feats):
                # toy data (x = 0, 1, 2, ...): a model of no feature would be no model at all
                feats = [c for c in names if c in feats or c in dict(counts)]
                self.notes.append(
                    f"data.open kept column(s) {_names([c for c, _ in counts])} of {self.description}, "
                    "which count the rows like an identifier: they are the only numeric features; "
                    "leave them out with drop=[...]"
                )
            else:
                self.excluded.update(counts)
            self.excluded = {c: self.excluded[c] for c in names if c in self.excluded}
            for c, why in self.excluded.items():
                self.notes.append(
                    f"data.open left out column {c!r} of {self.description} ({why}); name it in "
                    "features=[...] to train on it"
                )
            for c in feats:
                if not _is_numeric(types[c]):
                    raise ParameterError(
                        f"data.open: column {c!r} of {where} is not numeric ({types[c]}); pass "
                        "features=[...] to choose the feature columns, or drop=[...] to leave it out",
                        owner="data.open",
                        param="features",
                        value=None,
                    )
        else:
            feats = self._requested_features
            missing = [c for c in feats if c not in names]
            if missing:
                raise ParameterError(
                    f"data.open: feature column(s) {', '.join(map(repr, missing))} not in {where}; "
                    f"columns: {', '.join(names)}",
                    owner="data.open",
                    param="features",
                    value=missing,
                )
            if self.target in feats:
                raise ParameterError(
                    f"data.open: the target column {self.target!r} is also listed in features",
                    owner="data.open",
                    param="features",
                    value=list(feats),
                )
            for c in feats:
                if not _is_numeric(types[c]) and self.kind == "parquet":
                    raise ParameterError(
                        f"data.open: feature column {c!r} of {where} is not numeric ({types[c]})",
                        owner="data.open",
                        param="features",
                        value=c,
                    )
        if not feats:
            left = "".join(f"; left out {c!r}: {why}" for c, why in self.excluded.items())
            hint = "; name the features with features=[...]" if self.excluded else ""
            raise DataError(
                f"data.open: {where} has no feature columns besides the target {self.target!r}{left}{hint}"
            )
        self.feature_names = tuple(feats)
        floats64 = any(_pa().types.is_float64(types[c]) or _pa().types.is_int64(types[c]) for c in feats)
        if self._dtype_arg is None:
            self.dtype = np.dtype(np.float64 if floats64 or self.kind == "csv" else np.float32)
        else:
            self.dtype = np.dtype(self._dtype_arg)

    def _check_drop(self, names: list[str], where: str) -> None:
        def refuse(why: str) -> ParameterError:
            return ParameterError(
                f"data.open: {why}", owner="data.open", param="drop", value=list(self._drop)
            )

        if self._requested_features is not None:
            raise refuse(
                "give features=[...] (the columns to use) or drop=[...] (columns to leave out), not both"
            )
        missing = [c for c in self._drop if c not in names]
        if missing:
            raise refuse(
                f"drop names column(s) {_names(missing)} not in {where}; columns: {', '.join(names)}"
            )
        if self.target in self._drop:
            raise refuse(f"drop names the target column {self.target!r}")

    def _refuse_duplicates(self, names: list[str], where: str) -> None:
        """Columns are found by name: two of one name that would be read cannot be told apart."""
        twins = list(dict.fromkeys(c for c in names if names.count(c) > 1))
        if self._requested_features is not None:
            read = {*self._requested_features, self.target}
            twins = [c for c in twins if c in read]
        if twins:
            raise DataError(
                f"data.open: {where!r} has duplicate column names: {_names(twins)}; rename them in the "
                "file (columns are found by name), or leave them out of features=[...]",
                file=where,
                column=twins[0],
            )

    @property
    def n_features(self) -> int:
        return len(self.feature_names or ())

    # -- trust -------------------------------------------------------------------------------------
    def _check_unchanged(self, file: int) -> None:
        """Raise :class:`FileChangedError` if ``file`` is no longer as it was opened (one stat)."""
        p = self.paths[file]
        try:
            now = FileStamp.of(p)
        except FileNotFoundError:
            raise _changed(p, "deleted or moved") from None
        if now != self._stamps[file]:
            raise _changed(p, now.change_from(self._stamps[file]))

    def check_unchanged(self) -> None:
        """Raise :class:`FileChangedError` naming the first file that changed since it was opened."""
        for f in range(len(self.paths)):
            self._check_unchanged(f)

    def fingerprint(self) -> dict[str, Any]:
        self.check_unchanged()
        layout = self._layout()
        rows = [0] * len(self.paths)
        for s in layout:
            rows[s.file] += s.rows
        # the epoch order depends on the shards: a resumed run must see the same ones
        digest = hashlib.sha256(",".join(f"{s.file}:{s.rows}" for s in layout).encode()).hexdigest()
        return {
            "description": self.description,
            "kind": self.kind,
            "files": [[p.name, st.size, n] for p, st, n in zip(self.paths, self._stamps, rows, strict=True)],
            "layout": digest[:16],
            "target": self.target,
            "features": list(self.feature_names or ()),
            "window": self.window,
            "on_bad_rows": self.on_bad_rows,
            "n_features": self.n_features,
        }

    def batches(self, epoch: int, batch_size: int | None, **kw: Any) -> Iterator[Any]:
        self.check_unchanged()  # before the epoch: a changed file is named before any step
        return super().batches(epoch, batch_size, **kw)

    # -- layout ------------------------------------------------------------------------------------
    def _layout(self) -> list[Shard]:
        raise NotImplementedError

    def _tables(self, shard: Shard, skip_raw: int, tally: _Tally) -> Iterator[Any]:
        raise NotImplementedError

    def _where(self, shard: Shard) -> str:
        """Where a shard lies in its file, for messages."""
        raise NotImplementedError

    def _number_shards(self, per_file: Iterator[Iterator[tuple[Any, int]]]) -> list[Shard]:
        """The non-empty shards of every file, numbered by their first global row."""
        shards: list[Shard] = []
        row = 0
        for f, pieces in enumerate(per_file):
            for where, n in pieces:
                if n:
                    shards.append(Shard(f, where, n, row))
                    row += n
        if row == 0:
            what = f"{str(self.paths[0])!r} holds" if len(self.paths) == 1 else f"{self.description} hold"
            raise DataError(f"data.open: {what} no data rows", file=str(self.paths[0]))
        return shards

    def raw_shard_sizes(self) -> list[int]:
        return [s.rows for s in self._layout()]

    def shard_sizes(self) -> list[int]:
        if self.on_bad_rows == "raise":
            return self.raw_shard_sizes()
        if self._kept is None:
            self.summarize(classes=False, moments=False)
        assert self._kept is not None
        return self._kept

    def shard_range(self, shard: int) -> tuple[int, int] | None:
        """(first global row, raw rows) of ``shard`` (what a row-hash split needs), or None with
        ``on_bad_rows="skip"``: then only reading the shard tells which of its rows remain."""
        if self.on_bad_rows != "raise":
            return None
        s = self._layout()[shard]
        return s.first, s.rows

    # -- reading ---------------------------------------------------------------------------------
    def read_shard(self, shard: int, skip: int = 0) -> Iterator[Chunk]:
        info = self._layout()[shard]
        self._check_unchanged(info.file)
        exact = self.on_bad_rows == "raise"
        raw_skip = skip if exact else 0
        seen = raw_skip  # table rows of this shard consumed so far
        tally = _Tally()
        try:
            for table in self._tables(info, raw_skip, tally):
                # every piece passed on was read while the file was as counted
                self._check_unchanged(info.file)
                chunk = self._convert(table, info.file, info.first + seen)
                seen += table.num_rows
                if not exact and skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk.take(slice(cut, None)), skip - cut
                if len(chunk):
                    yield chunk
        except FileChangedError:
            raise
        except Exception:
            self._check_unchanged(info.file)  # a read that failed because the file changed says so
            raise
        if seen + tally.dropped != info.rows:
            self._check_unchanged(info.file)
            p = self.paths[info.file]
            raise DataError(
                f"{str(p)!r}: {self._where(info)} holds {seen + tally.dropped} rows where ds.data.open "
                f"counted {info.rows}: the file changed in a way its size and time do not show, or was "
                "miscounted; reopen it with ds.data.open",
                file=str(p),
            )

    def _convert(self, table: Any, file: int, row0: int) -> Chunk:
        """A pyarrow table (feature columns + target) as a checked chunk (bad rows raised or dropped)."""
        n = table.num_rows
        feats = self.feature_names or ()
        # columns are contiguous in Arrow: fill a (d, n) array row by row, then one transposing copy
        Xt = np.empty((len(feats), n), dtype=self.dtype)
        for j, c in enumerate(feats):
            Xt[j] = _numbers(table.column(c))
        X = np.ascontiguousarray(Xt.T)
        ycol = table.column(self.target)
        y_null = np.asarray(ycol.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if _is_numeric(ycol.type):
            y = _numbers(ycol)
            y_bad = ~np.isfinite(y)
        else:
            y = np.asarray(ycol.to_numpy(zero_copy_only=False), dtype=object)
            y_bad = y_null
        with np.errstate(invalid="ignore"):
            x_bad = ~np.isfinite(X).all(axis=1)
        bad = x_bad | y_bad
        rows = np.arange(row0, row0 + n, dtype=np.int64)
        if bad.any():
            if self.on_bad_rows == "raise":
                r = int(np.argmax(bad))
                if x_bad[r]:
                    j = int(np.argmax(~np.isfinite(X[r])))
                    col, value = feats[j], table.column(feats[j])[r].as_py()
                else:
                    col, value = self.target, ycol[r].as_py()
                self._raise_bad(file, int(rows[r]), col, value)
            keep = ~bad
            name = self.paths[file].name
            self._skip_count[name] = self._skip_count.get(name, 0) + int(bad.sum())
            X, y, rows = X[keep], y[keep], rows[keep]
        base = self._file_base(file)
        return Chunk(X, y, rows, self.paths[file].name, None, rows - (base - 1))

    def _file_base(self, file: int) -> int:
        """Global index of the first row of ``file``."""
        if not hasattr(self, "_bases"):
            bases: dict[int, int] = {}
            for s in self._layout():
                bases.setdefault(s.file, s.first)
            self._bases = bases
        return self._bases[file]

    def _file_row(self, file: int, global_row: int) -> int:
        """Data row number (from 1, after the header) of a global row index."""
        return global_row - self._file_base(file) + 1

    def _raise_bad(self, file: int, global_row: int, column: str, value: Any) -> None:
        reason = "a missing value" if value is None else f"the value {value!r}, which is not a finite number"
        row = self._file_row(file, global_row)
        raise DataError(
            f"{self.paths[file]}: row {row}, column {column!r}: {reason} "
            "(fix the file, or pass on_bad_rows='skip' to skip such rows)",
            file=str(self.paths[file]),
            row=row,
            column=column,
        )

    def summarize(self, *, classes: bool, moments: bool, targets: bool = False) -> Summary:
        acc = _Accumulator(self.n_features, classes, moments, targets)
        kept: list[int] = []
        self._skip_count = {}
        layout = self._layout()
        for shard in range(len(layout)):
            n = 0
            for chunk in self.read_shard(shard):
                acc.add(chunk.X, chunk.y)
                n += len(chunk)
            kept.append(n)
        if self.on_bad_rows == "skip":
            self._kept = kept
        self.skipped = dict(self._skip_count)
        out = acc.result()
        out.skipped = dict(self.skipped)
        return out


class ParquetSource(FileSource):
    """One or more Parquet files read by row group, only the needed columns."""

    def __init__(self, paths: Sequence[Path], **kw: Any):
        super().__init__(paths, kind="parquet", **kw)
        import pyarrow.parquet as pq

        self._pq = pq
        schema = None
        #: rows of each row group of each file, as opened
        self._files_meta: list[list[int]] = []
        for p in self.paths:
            try:
                pf = pq.ParquetFile(p)
            except Exception as exc:
                raise DataError(
                    f"data.open: could not read {str(p)!r} as Parquet: {exc}", file=str(p)
                ) from None
            s = pf.schema_arrow
            if schema is None:
                schema, first = s, p
                names = list(s.names)
                self._choose_columns(names, {f.name: f.type for f in s}, str(p), self._samples(pf, s))
            else:
                self._refuse_duplicates(list(s.names), str(p))
                want = {c: schema.field(c).type for c in (*self.feature_names, self.target)}
                got = {f.name: f.type for f in s}
                differ = [c for c in want if c not in got or got[c] != want[c]]
                if differ:
                    detail = ", ".join(f"{c} ({want[c]} vs {got.get(c, 'absent')})" for c in differ)
                    raise DataError(
                        f"data.open: {str(p)!r} and {str(first)!r} have different columns: {detail}",
                        file=str(p),
                        column=differ[0],
                    )
            self._files_meta.append(_row_groups(pf))
        self._shard_list = self._number_shards(enumerate(groups) for groups in self._files_meta)

    def _samples(self, pf: Any, schema: Any) -> dict[str, tuple[list[Any], str]]:
        """The first rows of the text and integer columns that could be identifiers (for
        :func:`~descend.data.columns.id_reason`); only when the features are not named."""
        if self._requested_features is not None:
            return {}
        pa = _pa()
        kinds = {}
        for f in schema:
            if f.name in (self.target, *self._drop):
                continue
            if pa.types.is_integer(f.type):
                kinds[f.name] = "integer"
            elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
                kinds[f.name] = "text"
        if not kinds or pf.num_row_groups == 0:
            return {}
        head = next(pf.iter_batches(batch_size=CHUNK_ROWS, columns=list(kinds), use_threads=False), None)
        if head is None:
            return {}
        return {c: (head.column(c).to_pylist(), k) for c, k in kinds.items()}

    def _layout(self) -> list[Shard]:
        return self._shard_list

    def _where(self, shard: Shard) -> str:
        return f"row group {shard.where}"

    def _tables(self, shard: Shard, skip_raw: int, tally: _Tally) -> Iterator[Any]:
        p = self.paths[shard.file]
        with self._pq.ParquetFile(p) as pf:
            # stat cannot see a rewrite of the same size within the clock's resolution; the
            # footer, read anyway, can
            old, new = self._files_meta[shard.file], _row_groups(pf)
            if new != old:
                raise _changed(
                    p,
                    f"row groups {len(old)} groups of {sum(old)} rows -> {len(new)} groups of {sum(new)} rows"
                    if (len(old), sum(old)) != (len(new), sum(new))
                    else "row groups of other sizes",
                )
            columns = [*self.feature_names, self.target]
            done = 0
            for rb in pf.iter_batches(
                batch_size=CHUNK_ROWS, row_groups=[shard.where], columns=columns, use_threads=False
            ):
                m = rb.num_rows
                if done + m <= skip_raw:
                    done += m
                    continue
                if done < skip_raw:
                    rb = rb.slice(skip_raw - done)
                done += m
                yield rb


def _row_groups(pf: Any) -> list[int]:
    return [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]


class _Peek(NamedTuple):
    """What the first block of a CSV says: column names and types, whether it has data rows,
    and the first cell of each column whose bytes do not decode (data row, bytes)."""

    names: list[str]
    types: dict[str, Any]
    has_rows: bool
    undecodable: dict[str, tuple[int, bytes]]
    #: the first values of the text and integer columns: {column: (values, "text" | "integer")}
    samples: dict[str, tuple[list[Any], str]]


class _LineScan(NamedTuple):
    """A CSV's data (after its header line) as byte ranges of whole lines with their non-blank
    lines, and whether a quote or a lone ``"\\r"`` (which pyarrow also ends a row at) occurs."""

    pieces: list[tuple[ByteRange, int]]
    quotes: bool
    lone_cr: bool

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.pieces)


def _line_counts(data: bytes) -> tuple[int, bool, bool]:
    """(non-blank lines, holds a quote, holds a lone ``"\\r"``) of ``data``: whole lines, from a
    line start through a final ``"\\n"``."""
    a = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(a == 10)
    gaps = np.diff(ends)  # a line's length + 1, for every line but the first
    # a blank line is a line end right after a line start, or after a line start and "\r"
    blank = int(ends[0] == 0) + int(np.count_nonzero(gaps == 1))
    lone_cr = False
    if b"\r" in data:  # (a fast search: most files have no "\r", or "\r\n" everywhere)
        blank += int(ends[0] == 1 and a[0] == 13)
        blank += int(np.count_nonzero((gaps == 2) & (a[ends[1:] - 1] == 13)))
        lone_cr = bool((a[np.flatnonzero(a == 13) + 1] != 10).any())
    return len(ends) - blank, b'"' in data, lone_cr


def _scan_lines(read: Callable[[int], bytes]) -> _LineScan:
    """Scan a CSV's bytes (``read(n)`` gives the next ones) in blocks of about
    :data:`CSV_SHARD_BYTES`, cutting after the last line end of each block."""
    pieces: list[tuple[ByteRange, int]] = []
    quotes = lone_cr = False
    pending = b""  # a line not ended yet
    pos = -1  # file offset of `pending`; -1 while the header line is not over
    while block := read(CSV_SHARD_BYTES):
        data = pending + block
        if pos < 0:
            nl = data.find(b"\n")
            if nl < 0:
                pending = data
                continue
            lone_cr = _line_counts(data[: nl + 1])[2]
            pos, data = nl + 1, data[nl + 1 :]
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        n, q, cr = _line_counts(data[: cut + 1])
        pieces.append((ByteRange(pos, cut + 1), n))
        quotes, lone_cr = quotes or q, lone_cr or cr
        pos, pending = pos + cut + 1, data[cut + 1 :]
    if pos < 0:  # no "\n" at all: a header alone, or lines ended by "\r" only
        lone_cr = b"\r" in pending.rstrip(b"\r")
    elif pending:  # a last line without a line end
        n, q, cr = _line_counts(pending + b"\n")
        pieces.append((ByteRange(pos, len(pending)), n))
        quotes, lone_cr = quotes or q, lone_cr or cr
    return _LineScan(pieces, quotes, lone_cr)


class CSVSource(FileSource):
    """CSV (or tab-separated) files with a header row, streamed by pyarrow.

    How a file is counted and cut into shards, and when it is read as one stream instead, is
    in the module docstring.
    """

    def __init__(self, paths: Sequence[Path], *, encoding: str = "utf-8", **kw: Any):
        super().__init__(paths, kind="csv", **kw)
        import pyarrow.csv as pcsv

        self._csv = pcsv
        self.encoding = encoding
        self._index: list[Shard] | None = None
        #: per file: a stream whose quoted fields may hold line breaks (pyarrow must not cut
        #: its blocks at every line end)
        self._multiline = [False] * len(self.paths)
        self._names: list[str] = []
        self._types: dict[str, Any] = {}
        first: Path | None = None
        typed: tuple[Path, _Peek] | None = None
        for p in self.paths:
            peek = self._peek(p)
            if first is None:
                first, self._names = p, peek.names
            elif peek.names != self._names:
                only_a = [c for c in self._names if c not in peek.names]
                only_b = [c for c in peek.names if c not in self._names]
                raise DataError(
                    f"data.open: {str(p)!r} and {str(first)!r} have different columns"
                    + (f"; only in {first.name}: {', '.join(only_a)}" if only_a else "")
                    + (f"; only in {p.name}: {', '.join(only_b)}" if only_b else "")
                    + ("; same names in another order" if not (only_a or only_b) else ""),
                    file=str(p),
                )
            if typed is None and peek.has_rows:  # types come from the first file with rows
                typed = (p, peek)
        assert first is not None
        if typed is None:
            what = f"{str(first)!r} has" if len(self.paths) == 1 else f"none of {self.description} has"
            raise DataError(f"data.open: {what} a header but no data rows", file=str(first))
        p, peek = typed
        self._types = peek.types
        read = self._names if self._requested_features is None else [*self._requested_features, self.target]
        for c in read:
            if c in peek.undecodable:
                row, value = peek.undecodable[c]
                raise self._not_text(p, f"row {row}, column {c!r}", value, row=row, column=c)
        self._choose_columns(self._names, self._types, str(p), peek.samples)
        pa = _pa()
        self._column_types = {c: pa.float64() for c in self.feature_names}
        self._column_types[self.target] = (
            pa.float64() if _is_numeric(self._types[self.target]) else pa.string()
        )

    # -- options -------------------------------------------------------------------------------
    def _read_options(self, **kw: Any) -> Any:
        # one thread: pyarrow numbers the rows it drops only then (for messages)
        return self._csv.ReadOptions(use_threads=False, encoding=self.encoding, **kw)

    def _parse_options(self, p: Path, invalid: list[int] | None, *, multiline: bool) -> Any:
        """Blank lines skipped; rows with the wrong number of fields dropped and their numbers
        (from 1, counting the header when pyarrow read it) noted in ``invalid``."""

        def handler(row: Any) -> str:
            if invalid is not None:
                invalid.append(row.number if row.number is not None else -1)
            return "skip"

        return self._csv.ParseOptions(
            delimiter=_delimiter(p),
            newlines_in_values=multiline,
            ignore_empty_lines=True,
            invalid_row_handler=handler,
        )

    # -- text ----------------------------------------------------------------------------------
    def _peek(self, p: Path) -> _Peek:
        """Column names and types from the first block: a column is numeric when most of its
        non-empty cells are numbers (a stray bad cell is reported later with its row)."""
        pa = _pa()
        try:
            with self._csv.open_csv(
                str(p),
                read_options=self._csv.ReadOptions(
                    use_threads=False, block_size=PEEK_BYTES, encoding=self.encoding
                ),
                parse_options=self._parse_options(p, None, multiline=True),
                convert_options=self._csv.ConvertOptions(strings_can_be_null=True),
            ) as reader:
                names = list(reader.schema.names)
                batch = next(iter(reader), None)
        except UnicodeError:
            raise self._undecodable_file(p) from None
        except Exception as exc:
            with pa.input_stream(str(p), compression="detect") as stream:
                head = stream.read(PEEK_BYTES)
            if not head.strip():
                raise DataError(f"data.open: {str(p)!r} is empty (not even a header)", file=str(p)) from None
            if b"\n" in head.rstrip(b"\r\n"):
                raise DataError(f"data.open: could not read {str(p)!r} as CSV: {exc}", file=str(p)) from None
            # a header without a line end, which pyarrow takes for no data at all: read it ended
            return self._peek_header(p, head)
        types: dict[str, Any] = {}
        undecodable: dict[str, tuple[int, bytes]] = {}
        for i, name in enumerate(names):
            col = batch.column(i) if batch is not None else pa.array([], pa.null())
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                cells = [v for v in col.to_pylist() if v not in (None, "")]
                ok = 0
                for v in cells:
                    try:
                        float(v)
                        ok += 1
                    except ValueError:
                        pass
                types[name] = pa.float64() if cells and ok > len(cells) / 2 else col.type
            else:
                types[name] = col.type
            if pa.types.is_binary(col.type):  # pyarrow's type for cells that are not UTF-8
                for r, v in enumerate(col.to_pylist()):
                    if v is not None and not _decodes(v):
                        undecodable.setdefault(name, (r + 1, v))
                        break
        samples: dict[str, tuple[list[Any], str]] = {}
        for i, name in enumerate(names):
            if batch is None:
                break
            if pa.types.is_integer(types[name]):
                samples[name] = (batch.column(i).to_pylist(), "integer")
            elif pa.types.is_string(types[name]) or pa.types.is_large_string(types[name]):
                samples[name] = (batch.column(i).to_pylist(), "text")
        return _Peek(names, types, batch is not None and batch.num_rows > 0, undecodable, samples)

    def _peek_header(self, p: Path, head: bytes) -> _Peek:
        """A file that is a header line alone."""
        table = self._csv.read_csv(
            _pa().BufferReader(head.rstrip(b"\r\n") + b"\n"),
            read_options=self._csv.ReadOptions(use_threads=False, encoding=self.encoding),
            parse_options=self._parse_options(p, None, multiline=True),
        )
        return _Peek(list(table.column_names), {c: _pa().null() for c in table.column_names}, False, {}, {})

    def _encoding_name(self) -> str:
        return "UTF-8" if codecs.lookup(self.encoding).name == "utf-8" else repr(self.encoding)

    def _not_text(self, p: Path, where: str, value: bytes, **at: Any) -> DataError:
        enc = self._encoding_name()
        hint = (
            "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8), or pass encoding= naming "
            "the file's encoding (e.g. encoding='latin-1')"
            if enc == "UTF-8"
            else "pass encoding= naming the file's actual encoding, or re-encode it as UTF-8"
        )
        return DataError(f"{p}: {where}: {value!r} is not valid {enc}; {hint}", file=str(p), **at)

    def _undecodable_file(self, p: Path) -> DataError:
        """The first bytes of ``p`` that do not decode, named by line and byte offset."""
        pa = _pa()
        dec = codecs.getincrementaldecoder(self.encoding)()
        offset = lines = 0
        with pa.input_stream(str(p), compression="detect") as stream:
            while True:
                block = stream.read(1 << 20)
                held = dec.getstate()[0]
                held = held if isinstance(held, bytes) else b""
                try:
                    dec.decode(block, final=not block)
                except UnicodeDecodeError as exc:  # its offsets are into held + block
                    data = held + block
                    line = lines + data[: exc.start].count(b"\n") + 1
                    at = offset - len(held) + exc.start
                    where = (
                        f"the header (line 1, byte offset {at})"
                        if line == 1
                        else f"line {line} (byte offset {at})"
                    )
                    return self._not_text(p, where, data[exc.start : exc.end], row=None)
                if not block:
                    break
                offset, lines = offset + len(block), lines + block.count(b"\n")
        return DataError(f"data.open: could not decode {str(p)!r} as {self._encoding_name()}", file=str(p))

    # -- layout --------------------------------------------------------------------------------
    def _layout(self) -> list[Shard]:
        if self._index is None:
            self._index = self._number_shards(self._index_file(f) for f in range(len(self.paths)))
        return self._index

    def _where(self, shard: Shard) -> str:
        if shard.where is None:
            return "the file"
        return f"bytes {shard.where.offset}..{shard.where.offset + shard.where.length}"

    def _index_file(self, f: int) -> list[tuple[ByteRange | None, int]]:
        """[(where, rows)]: byte ranges of a plain file, or one whole-stream shard."""
        p = self.paths[f]
        self._check_unchanged(f)
        compressed = _compression(p) is not None
        with _pa().input_stream(str(p), compression="detect") if compressed else open(p, "rb") as fh:
            scan = _scan_lines(fh.read)
        self._check_unchanged(f)  # counted as it was opened
        if scan.quotes or scan.lone_cr:
            rows = self._count_rows(f)
            self._check_unchanged(f)
            if scan.lone_cr or rows != scan.rows:  # some row is not one line: no cut is safe
                self._multiline[f] = scan.quotes
                return [(None, rows)]
        if compressed:
            return [(None, scan.rows)]
        return list(scan.pieces)

    def _count_rows(self, f: int) -> int:
        """Rows of file ``f`` as pyarrow's parser finds them (quotes honoured), bad rows included."""
        p = self.paths[f]
        pa = _pa()
        dropped: list[int] = []
        n = 0
        with self._csv.open_csv(
            str(p),
            read_options=self._read_options(block_size=STREAM_BLOCK_BYTES),
            parse_options=self._parse_options(p, dropped, multiline=True),
            # one column, as bytes: parsed, not converted
            convert_options=self._csv.ConvertOptions(
                include_columns=[self.target], column_types={self.target: pa.binary()}
            ),
        ) as reader:
            for rb in reader:
                n += rb.num_rows
        return n + len(dropped)

    # -- reading -------------------------------------------------------------------------------
    def _batches(self, shard: Shard, types: dict[str, Any], invalid: list[int]) -> Iterator[Any]:
        """Record batches of ``shard``: the columns of ``types``, converted to those types."""
        p = self.paths[shard.file]
        convert = self._csv.ConvertOptions(
            column_types=types, include_columns=list(types), strings_can_be_null=True
        )
        if shard.where is None:
            with self._csv.open_csv(
                str(p),
                read_options=self._read_options(block_size=STREAM_BLOCK_BYTES),
                parse_options=self._parse_options(p, invalid, multiline=self._multiline[shard.file]),
                convert_options=convert,
            ) as reader:
                yield from reader
            return
        offset, length = shard.where
        with open(p, "rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        self._check_unchanged(shard.file)  # these bytes are the rows that were counted
        if len(data) != length:
            raise _changed(p, f"bytes {offset}..{offset + length} no longer there")
        table = self._csv.read_csv(
            _pa().BufferReader(data),
            read_options=self._read_options(column_names=self._names),
            parse_options=self._parse_options(p, invalid, multiline=False),
            convert_options=convert,
        )
        yield from table.to_batches(max_chunksize=CHUNK_ROWS)

    def _tables(self, shard: Shard, skip_raw: int, tally: _Tally) -> Iterator[Any]:
        invalid: list[int] = []
        done = 0  # table rows read (passed on, or skipped over) so far
        try:
            for rb in self._batches(shard, self._column_types, invalid):
                self._take_invalid(shard, invalid, tally)
                m = rb.num_rows
                lo = min(max(skip_raw - done, 0), m)
                done += m
                for a in range(lo, m, CHUNK_ROWS):
                    yield rb.slice(a, CHUNK_ROWS)
        except UnicodeError:  # pyarrow's transcoding from another encoding
            raise self._undecodable_file(self.paths[shard.file]) from None
        except _pa().ArrowInvalid:
            # a cell that is not a number (or not text): the shard again as bytes, converted
            # cell by cell, from the first row not passed on yet (and its dropped rows
            # counted again from its start)
            if tally.dropped:
                name = self.paths[shard.file].name
                self._skip_count[name] -= tally.dropped
                tally.dropped = 0
            yield from self._coerced(shard, max(done, skip_raw), tally)

    def _take_invalid(self, shard: Shard, invalid: list[int], tally: _Tally) -> None:
        """Rows with the wrong number of fields: raised, or counted as skipped."""
        if not invalid:
            return
        p = self.paths[shard.file]
        if self.on_bad_rows == "skip":
            self._skip_count[p.name] = self._skip_count.get(p.name, 0) + len(invalid)
            tally.dropped += len(invalid)
            invalid.clear()
            return
        row = self._row_of(shard, invalid[0]) if invalid[0] >= 0 else None
        at = f"row {row}" if row is not None else "a row"
        raise DataError(
            f"{p}: {at}: wrong number of fields (expected {len(self._names)}: {', '.join(self._names)}); "
            "fix the file, or pass on_bad_rows='skip' to skip such rows",
            file=str(p),
            row=row,
        )

    def _row_of(self, shard: Shard, number: int) -> int:
        """Data row in its file (from 1) of pyarrow's row ``number`` in a read of ``shard``."""
        header = 1 if shard.where is None else 0  # a stream's numbers count its header
        return shard.first - self._file_base(shard.file) + number - header

    def _raw_row(self, shard: Shard, t: int, before: int, numbers: list[int]) -> int:
        """Data row in its file (from 1) of table row ``t`` of a read of ``shard``, given the rows
        dropped by the parser in earlier batches (``before``) and the numbers of those dropped
        in this batch."""
        header = 1 if shard.where is None else 0  # a stream's numbers count its header
        raw = t + before + 1
        for n in sorted(numbers):
            if n - header <= raw:
                raw += 1
        return shard.first - self._file_base(shard.file) + raw

    def _coerced(self, shard: Shard, skip_rows: int, tally: _Tally) -> Iterator[Any]:
        """The shard read as bytes, numbers converted cell by cell: the first bad cell is raised,
        or (``on_bad_rows="skip"``) becomes a missing value, so that its row is skipped. Bytes
        that do not decode are raised either way. ``skip_rows`` rows are not passed on."""
        p = self.paths[shard.file]
        pa = _pa()
        columns = [*self.feature_names, self.target]
        numeric = {*self.feature_names} | ({self.target} if _is_numeric(self._types[self.target]) else set())
        invalid: list[int] = []
        done = 0  # table rows read so far
        try:
            for rb in self._batches(shard, {c: pa.binary() for c in columns}, invalid):
                arrays = {}
                first_bad: tuple[int, str, Any] | None = None  # (batch row, column, text)
                first_raw: tuple[int, str, bytes] | None = None  # bytes that do not decode
                for c in columns:
                    out: list[Any] = []
                    for i, v in enumerate(rb.column(c).to_pylist()):
                        if v is None:
                            out.append(None)
                            continue
                        try:
                            text = v.decode("utf-8")  # pyarrow hands every encoding over as UTF-8
                        except UnicodeDecodeError:
                            out.append(None)
                            if first_raw is None or i < first_raw[0]:
                                first_raw = (i, c, v)
                            continue
                        if c not in numeric:
                            out.append(text)
                            continue
                        try:
                            out.append(float(text))
                        except ValueError:
                            out.append(None)
                            if first_bad is None or i < first_bad[0]:
                                first_bad = (i, c, text)
                    arrays[c] = pa.array(out, pa.float64() if c in numeric else pa.string())

                # the first problem in the file is the one raised
                problems = []
                if first_raw is not None:  # raised whatever on_bad_rows says
                    i, c, v = first_raw
                    r = self._raw_row(shard, done + i, tally.dropped, invalid)
                    problems.append((r, self._not_text(p, f"row {r}, column {c!r}", v, row=r, column=c)))
                if self.on_bad_rows == "raise":
                    if invalid:
                        problems.append((self._row_of(shard, max(invalid[0], 0)), None))
                    if first_bad is not None:
                        i, c, v = first_bad
                        r = self._raw_row(shard, done + i, tally.dropped, invalid)
                        msg = f"{p}: row {r}, column {c!r}: {v!r} is not a number"
                        problems.append((r, DataError(msg, file=str(p), row=r, column=c)))
                if problems:
                    _, error = min(problems, key=lambda x: x[0])
                    if error is None:  # a row with the wrong number of fields
                        self._take_invalid(shard, invalid, tally)
                    raise error
                self._take_invalid(shard, invalid, tally)
                batch = pa.record_batch(arrays)
                m = batch.num_rows
                lo = min(max(skip_rows - done, 0), m)
                done += m
                for a in range(lo, m, CHUNK_ROWS):
                    yield batch.slice(a, CHUNK_ROWS)
        except pa.ArrowInvalid as exc:  # not a cell: the text itself does not parse
            raise DataError(f"{p}: could not parse {self._where(shard)} as CSV: {exc}", file=str(p)) from None


def _decodes(v: bytes) -> bool:
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_encoding(encoding: Any) -> str:
    """``encoding`` if pyarrow can read a CSV in it and its line ends, quotes and delimiters
    are the ASCII bytes (which the byte scan looks for)."""
    if not isinstance(encoding, str):
        raise ParameterError(
            f"data.open: encoding must be a codec name such as 'utf-8' or 'latin-1', got {encoding!r}",
            owner="data.open",
            param="encoding",
            value=encoding,
        )
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ParameterError(
            f"data.open: unknown encoding {encoding!r}; give a codec name Python knows, such as "
            "'utf-8', 'latin-1' or 'cp1252'",
            owner="data.open",
            param="encoding",
            value=encoding,
        ) from None
    ascii_bytes = b'\t\n\r ",;.-+0123456789eEaz'
    try:
        same = codecs.decode(ascii_bytes, encoding) == ascii_bytes.decode("ascii")
    except (UnicodeError, ValueError):
        same = False
    if not same:
        raise ParameterError(
            f"data.open: encoding must be an ASCII-compatible codec (utf-8, latin-1, cp1252, ...), got "
            f"{encoding!r}; convert the file to UTF-8 first (e.g. iconv -f {encoding} -t utf-8)",
            owner="data.open",
            param="encoding",
            value=encoding,
        )
    return encoding


def _compression(p: Path) -> str | None:
    s = p.suffix.lower()
    return s if s in COMPRESSIONS else None


def _delimiter(p: Path) -> str:
    name = p.name.lower()
    if _compression(p):
        name = name[: -len(p.suffix)]
    return "\t" if name.endswith(".tsv") else ","


def _expand(path: str | os.PathLike[str]) -> tuple[list[Path], str]:
    """Files named by a path, a directory or a glob, and their format from the suffix."""
    text = os.fspath(path)
    if any(ch in text for ch in "*?["):
        import glob

        files = sorted(Path(x) for x in glob.glob(text))
        if not files:
            raise FileNotFoundError(f"data.open: no files match {text!r}")
    else:
        p = Path(text)
        if not p.exists():
            raise FileNotFoundError(f"data.open: no such file or directory {text!r}")
        if p.is_dir():
            files = sorted(x for x in p.iterdir() if x.is_file() and _format_of(x) in ("parquet", "csv"))
            if not files:
                raise FileNotFoundError(
                    f"data.open: directory {text!r} holds no Parquet or CSV files; supported: {SUPPORTED}"
                )
        else:
            files = [p]
    kinds = {_format_of(f) for f in files}
    if len(kinds) > 1:
        raise ValueError(f"data.open: {text!r} mixes file types ({', '.join(sorted(map(str, kinds)))})")
    return files, kinds.pop() or ""


def _format_of(p: Path) -> str | None:
    name = p.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(".npy"):
        return "npy"
    stem = name[: -len(p.suffix)] if _compression(p) else name
    if stem.endswith(tuple(CSV_DELIMITERS)):
        return "csv"
    return None
