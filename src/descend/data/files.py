"""Parquet and CSV files as data sources, streamed by row group or byte range (never loaded whole)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from .base import Chunk, DataError, DataSource, Summary, _Accumulator

__all__ = ["CSVSource", "FileSource", "ParquetSource"]

#: rows converted at a time while a shard is read
CHUNK_ROWS = 1 << 16
#: a plain CSV is cut into shards of about this many bytes (at line starts)
CSV_SHARD_BYTES = 8 << 20
ON_BAD_ROWS = ("raise", "skip")


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


class FileSource(DataSource):
    """What Parquet and CSV sources share: column choice, conversion, bad rows, holdout counts.

    Subclasses list their shards in ``self._shards`` as ``(file index, where, raw rows,
    first global row)`` and yield pyarrow tables of the needed columns from
    :meth:`_tables`; this class turns them into checked chunks.
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
    ):
        self.paths = list(paths)
        self.target = target
        self.on_bad_rows = on_bad_rows
        self.window = window
        self.kind = kind
        self._requested_features = None if features is None else list(features)
        self._dtype_arg = dtype
        self._kept: list[int] | None = None
        #: rows skipped per file in one whole pass (``on_bad_rows="skip"``), known after a pass
        self.skipped: dict[str, int] = {}
        self._skip_count: dict[str, int] = {}
        first = self.paths[0].name
        more = f" (+{len(self.paths) - 1} more)" if len(self.paths) > 1 else ""
        self.description = f"{first}{more}"

    # -- columns ---------------------------------------------------------------------------------
    def _choose_columns(self, names: list[str], types: dict[str, Any], where: str) -> None:
        if self.target not in names:
            raise ParameterError(
                f"data.open: target column {self.target!r} is not in {where}; columns: {', '.join(names)}",
                owner="data.open",
                param="target",
                value=self.target,
            )
        if self._requested_features is None:
            feats = [c for c in names if c != self.target]
            for c in feats:
                if not _is_numeric(types[c]):
                    raise ParameterError(
                        f"data.open: column {c!r} of {where} is not numeric ({types[c]}); pass "
                        "features=[...] to choose the feature columns",
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
            raise DataError(f"data.open: {where} has no feature columns besides the target {self.target!r}")
        self.feature_names = tuple(feats)
        floats64 = any(_pa().types.is_float64(types[c]) or _pa().types.is_int64(types[c]) for c in feats)
        if self._dtype_arg is None:
            self.dtype = np.dtype(np.float64 if floats64 or self.kind == "csv" else np.float32)
        else:
            self.dtype = np.dtype(self._dtype_arg)

    @property
    def n_features(self) -> int:
        return len(self.feature_names or ())

    def fingerprint(self) -> dict[str, Any]:
        stats = []
        for p in self.paths:
            st = p.stat()
            stats.append([p.name, st.st_size])
        return {
            "description": self.description,
            "kind": self.kind,
            "files": stats,
            "target": self.target,
            "features": list(self.feature_names or ()),
            "window": self.window,
            "on_bad_rows": self.on_bad_rows,
            "n_features": self.n_features,
        }

    # -- layout ------------------------------------------------------------------------------------
    def _layout(self) -> list[tuple[int, Any, int, int]]:
        raise NotImplementedError

    def _tables(self, shard: tuple[int, Any, int, int], skip_raw: int) -> Iterator[Any]:
        raise NotImplementedError

    def _number_shards(
        self, per_file: Iterator[Iterator[tuple[Any, int]]]
    ) -> list[tuple[int, Any, int, int]]:
        """``(file, where, rows, first global row)`` for the non-empty shards of every file."""
        shards: list[tuple[int, Any, int, int]] = []
        row = 0
        for f, pieces in enumerate(per_file):
            for where, n in pieces:
                if n:
                    shards.append((f, where, n, row))
                    row += n
        if row == 0:
            raise DataError(f"data.open: {self.description} holds no data rows")
        return shards

    def raw_shard_sizes(self) -> list[int]:
        return [s[2] for s in self._layout()]

    def shard_sizes(self) -> list[int]:
        if self.on_bad_rows == "raise":
            return self.raw_shard_sizes()
        if self._kept is None:
            self.summarize(classes=False, moments=False)
        assert self._kept is not None
        return self._kept

    def shard_rows(self, shard: int) -> tuple[int, int]:
        """(first global row, raw rows) of ``shard``: what a row-hash split needs."""
        s = self._layout()[shard]
        return s[3], s[2]

    # -- reading ---------------------------------------------------------------------------------
    def read_shard(self, shard: int, skip: int = 0) -> Iterator[Chunk]:
        info = self._layout()[shard]
        exact = self.on_bad_rows == "raise"
        row0 = info[3]
        raw_skip = skip if exact else 0
        seen = raw_skip  # raw rows of this shard consumed so far
        for table in self._tables(info, raw_skip):
            chunk = self._convert(table, info[0], row0 + seen)
            seen += table.num_rows
            if not exact and skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk.take(slice(cut, None)), skip - cut
            if len(chunk):
                yield chunk

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
                bases.setdefault(s[0], s[3])
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

    def summarize(self, *, classes: bool, moments: bool) -> Summary:
        acc = _Accumulator(self.n_features, classes, moments)
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
        self._files_meta = []
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
                self._choose_columns(names, {f.name: f.type for f in s}, str(p))
            else:
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
            self._files_meta.append([pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
        self._shard_list = self._number_shards(enumerate(groups) for groups in self._files_meta)

    def _layout(self) -> list[tuple[int, Any, int, int]]:
        return self._shard_list

    def _tables(self, shard: tuple[int, Any, int, int], skip_raw: int) -> Iterator[Any]:
        f, group = shard[0], shard[1]
        pf = self._pq.ParquetFile(self.paths[f])
        columns = [*self.feature_names, self.target]
        done = 0
        for rb in pf.iter_batches(
            batch_size=CHUNK_ROWS, row_groups=[group], columns=columns, use_threads=False
        ):
            m = rb.num_rows
            if done + m <= skip_raw:
                done += m
                continue
            if done < skip_raw:
                rb = rb.slice(skip_raw - done)
            done += m
            yield rb


class CSVSource(FileSource):
    """A CSV file with a header row, streamed by pyarrow; ``.csv.gz`` is read as one stream.

    A plain file is indexed once by scanning its bytes for line starts (no parsing), which
    gives its row count and shards of about :data:`CSV_SHARD_BYTES`; a shard is parsed from
    its byte range. A compressed file, or one with quoted fields (which may hold line breaks),
    is one shard, read from its start.
    """

    def __init__(self, paths: Sequence[Path], **kw: Any):
        super().__init__(paths, kind="csv", **kw)
        import pyarrow.csv as pcsv

        self._csv = pcsv
        self._index: list[tuple[int, Any, int, int]] | None = None
        self._names: list[str] = []
        self._types: dict[str, Any] = {}
        first = None
        for p in self.paths:
            names, types = self._peek(p)
            if first is None:
                first, self._names, self._types = p, names, types
                self._choose_columns(names, types, str(p))
            elif names != self._names:
                only_a = [c for c in self._names if c not in names]
                only_b = [c for c in names if c not in self._names]
                raise DataError(
                    f"data.open: {str(p)!r} and {str(first)!r} have different columns"
                    + (f"; only in {first.name}: {', '.join(only_a)}" if only_a else "")
                    + (f"; only in {p.name}: {', '.join(only_b)}" if only_b else "")
                    + ("; same names in another order" if not (only_a or only_b) else ""),
                    file=str(p),
                )
        pa = _pa()
        self._column_types = {c: pa.float64() for c in self.feature_names}
        self._column_types[self.target] = (
            pa.float64() if _is_numeric(self._types[self.target]) else pa.string()
        )

    def _peek(self, p: Path) -> tuple[list[str], dict[str, Any]]:
        """Column names and types from the first MiB: a column is numeric when most of its
        non-empty cells are numbers (a stray bad cell is reported later with its row)."""
        pa = _pa()
        try:
            opener = gzip.open if p.name.endswith(".gz") else open
            with opener(p, "rb") as fh:
                head = fh.read(1 << 20)
            if len(head) == 1 << 20:
                head = head[: head.rfind(b"\n") + 1] or head
            table = self._csv.read_csv(
                pa.BufferReader(head),
                parse_options=self._csv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                convert_options=self._csv.ConvertOptions(strings_can_be_null=True),
            )
        except Exception as exc:
            raise DataError(f"data.open: could not read {str(p)!r} as CSV: {exc}", file=str(p)) from None
        types = {}
        for name in table.column_names:
            col = table.column(name)
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
        return list(table.column_names), types

    @staticmethod
    def _compressed(p: Path) -> bool:
        return p.suffix in (".gz", ".bz2", ".zst", ".lz4")

    def _layout(self) -> list[tuple[int, Any, int, int]]:
        if self._index is None:
            self._index = self._number_shards(self._index_file(p) for p in self.paths)
        return self._index

    def _index_file(self, p: Path) -> list[tuple[Any, int]]:
        """[(where, rows)]: byte ranges of a plain file, or one whole-stream shard."""
        if self._compressed(p):
            opener = gzip.open if p.suffix == ".gz" else None
            if opener is None:
                return [(("stream", 0, 0), self._count_stream(p))]
            lines, last = 0, b"\n"
            with opener(p, "rb") as fh:
                while block := fh.read(16 << 20):
                    lines += block.count(b"\n")
                    last = block[-1:]
            rows = lines + (last != b"\n") - 1  # minus the header
            return [(("stream", 0, 0), max(rows, 0))]
        size = p.stat().st_size
        out: list[tuple[Any, int]] = []
        with open(p, "rb") as fh:
            header = fh.readline()
            quoted = False  # quotes in the header are harmless; in data they may hide line breaks
            shard_start = data_start = len(header)
            pending = b""  # a line not yet ended
            while block := fh.read(CSV_SHARD_BYTES):
                quoted = quoted or b'"' in block
                data = pending + block
                cut = data.rfind(b"\n")
                if cut < 0:
                    pending = data
                    continue
                end = data_start + cut + 1
                out.append(((shard_start, end - shard_start), data[: cut + 1].count(b"\n")))
                pending, data_start, shard_start = data[cut + 1 :], end, end
            if pending.strip():
                out.append(((shard_start, size - shard_start), 1))
        if quoted:
            return [(("stream", 0, 0), sum(n for _, n in out))]
        return [(("range", *where), n) for where, n in out]

    def _count_stream(self, p: Path) -> int:
        n = 0
        for rb in self._stream(p):
            n += rb.num_rows
        return n

    def _parse_options(self, invalid: list[int]) -> Any:
        def handler(row: Any) -> str:
            invalid.append(row.number if row.number is not None else -1)
            return "skip"

        return self._csv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=handler)

    def _convert_options(self) -> Any:
        return self._csv.ConvertOptions(
            column_types=self._column_types,
            include_columns=[*self.feature_names, self.target],
            strings_can_be_null=True,
        )

    def _stream(self, p: Path, invalid: list[int] | None = None) -> Iterator[Any]:
        reader = self._csv.open_csv(
            p,
            read_options=self._csv.ReadOptions(column_names=self._names, skip_rows=1, block_size=4 << 20),
            parse_options=self._parse_options([] if invalid is None else invalid),
            convert_options=self._convert_options(),
        )
        yield from reader

    def _tables(self, shard: tuple[int, Any, int, int], skip_raw: int) -> Iterator[Any]:
        f, where, row0 = shard[0], shard[1], shard[3]
        p = self.paths[f]
        invalid: list[int] = []
        try:
            if where[0] == "stream":
                batches = self._stream(p, invalid)
            else:
                _, offset, length = where
                with open(p, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(length)
                pa = _pa()
                table = self._csv.read_csv(
                    pa.BufferReader(data),
                    read_options=self._csv.ReadOptions(column_names=self._names, use_threads=False),
                    parse_options=self._parse_options(invalid),
                    convert_options=self._convert_options(),
                )
                batches = iter(table.to_batches(max_chunksize=CHUNK_ROWS))
            done = 0
            for rb in batches:
                m = rb.num_rows
                if done + m <= skip_raw:
                    done += m
                    continue
                if invalid:
                    self._invalid_rows(f, row0, invalid)
                if done < skip_raw:
                    rb = rb.slice(skip_raw - done)
                yield rb
                done += m
            if invalid:
                self._invalid_rows(f, row0, invalid)
        except _pa().ArrowInvalid:
            # a cell that is not a number: re-read this shard as text to name it (or skip its row)
            yield from self._coerced(f, where, row0, skip_raw)

    def _invalid_rows(self, f: int, row0: int, invalid: list[int]) -> None:
        """Rows with the wrong number of fields (blank lines too): raised, or counted as skipped."""
        p = self.paths[f]
        if self.on_bad_rows == "skip":
            self._skip_count[p.name] = self._skip_count.get(p.name, 0) + len(invalid)
            invalid.clear()
            return
        base = min(s[3] for s in self._layout() if s[0] == f)
        row = row0 - base + invalid[0] if invalid[0] >= 0 else None
        at = f"row {row}" if row is not None else "a row"
        raise DataError(
            f"{p}: {at}: wrong number of fields (expected {len(self._names)}: {', '.join(self._names)}); "
            "fix the file, or pass on_bad_rows='skip' to skip such rows",
            file=str(p),
            row=row,
        )

    def _coerced(self, f: int, where: Any, row0: int, skip_raw: int) -> Iterator[Any]:
        """The shard read as text, numbers converted cell by cell: the first bad cell is raised,
        or (``on_bad_rows="skip"``) becomes a missing value, so that its row is skipped."""
        p = self.paths[f]
        pa = _pa()
        columns = [*self.feature_names, self.target]
        opts = self._csv.ConvertOptions(
            column_types={c: pa.string() for c in columns}, include_columns=columns, strings_can_be_null=True
        )
        invalid: list[int] = []
        stream = where[0] == "stream"
        ropts = self._csv.ReadOptions(column_names=self._names, skip_rows=1 if stream else 0)
        if stream:
            table = self._csv.read_csv(
                p, read_options=ropts, parse_options=self._parse_options(invalid), convert_options=opts
            )
        else:
            with open(p, "rb") as fh:
                fh.seek(where[1])
                data = fh.read(where[2])
            table = self._csv.read_csv(
                pa.BufferReader(data),
                read_options=ropts,
                parse_options=self._parse_options(invalid),
                convert_options=opts,
            )
        numeric = [*self.feature_names] + ([self.target] if _is_numeric(self._types[self.target]) else [])
        first_bad: tuple[int, str, Any] | None = None
        arrays = {}
        for c in columns:
            values = table.column(c).to_pylist()
            if c not in numeric:
                arrays[c] = pa.array(values, pa.string())
                continue
            out = []
            for i, v in enumerate(values):
                try:
                    out.append(None if v is None or v == "" else float(v))
                except ValueError:
                    out.append(None)
                    if first_bad is None or i < first_bad[0]:
                        first_bad = (i, c, v)
            arrays[c] = pa.array(out, pa.float64())
        if invalid:
            if self.on_bad_rows == "raise" and (first_bad is None or invalid[0] - 1 <= first_bad[0]):
                self._invalid_rows(f, row0, invalid)
            self._invalid_rows(f, row0, invalid) if self.on_bad_rows == "skip" else None
        if first_bad is not None and self.on_bad_rows == "raise":
            i, c, v = first_bad
            row = row0 - self._file_base(f) + i + 1
            raise DataError(
                f"{p}: row {row}, column {c!r}: {v!r} is not a number", file=str(p), row=row, column=c
            )
        table = pa.table(arrays)
        if skip_raw:
            table = table.slice(skip_raw)
        yield from table.to_batches(max_chunksize=CHUNK_ROWS)


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
                raise FileNotFoundError(f"data.open: directory {text!r} holds no .parquet or .csv files")
        else:
            files = [p]
    kinds = {_format_of(f) for f in files}
    if len(kinds) > 1:
        raise ValueError(f"data.open: {text!r} mixes file types ({', '.join(sorted(map(str, kinds)))})")
    return files, kinds.pop() or ""


def _format_of(p: Path) -> str | None:
    name = p.name.lower()
    if name.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".tsv")):
        return "csv"
    if name.endswith(".npy"):
        return "npy"
    return None
