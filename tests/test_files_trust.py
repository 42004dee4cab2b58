"""CSV and Parquet files are read whole and as they were: quoted line breaks, blank lines, encodings,
compressions and tab-separated files; a file that changes under a run is named, never half-read."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import descend as ds
import descend.data.files as files
from descend.data import DataError, DataSource, FileChangedError
from descend.data.base import Chunk
from descend.errors import ParameterError

FIT = dict(optimizer="sgd", lr=0.5, shuffle=False, progress=False)


def numbers(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def write_rows(path, header, rows, eol="\n", tail=None):
    text = eol.join([header, *rows]) + eol + (tail or "")
    path.write_bytes(text.encode())
    return path


def quoted_csv(path, X, y, *, newlines=True, eol="\n"):
    """A CSV whose quoted `note` field holds line breaks ("\\n" and "\\r\\n") when ``newlines``."""
    rows = []
    for i in range(len(y)):
        if newlines:
            note = '"first line\nsecond, line"' if i % 2 else '"a\r\nb ""quoted"""'
        else:
            note = '"one, line"'
        rows.append(f"{float(X[i, 0])!r},{note},{float(X[i, 1])!r},{y[i]}")
    return write_rows(path, "a,note,b,y", rows, eol=eol)


def params_close(a, b, rtol=1e-9):
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------- quoted line breaks


def test_quoted_line_breaks_are_counted_and_every_row_is_trained_on(tmp_path):
    X, y = numbers(200)
    path = quoted_csv(tmp_path / "q.csv", X, y)
    src = ds.data.open(path, target="y", features=["a", "b"])
    assert src.n_samples == 200  # 400 lines, 200 rows
    model = ds.models.LogisticRegression(dtype="float64")
    a = ds.fit(model, src, batch_size=None, epochs=5, **FIT)
    b = ds.fit(model, (X, y), batch_size=None, epochs=5, **FIT)
    assert a.steps_completed == b.steps_completed == 5
    assert a.history.epochs["samples_seen"][-1] == 1000
    params_close(a, b)
    run = ds.fit(model, src, batch_size=None, epochs=3, validation=0.2, **FIT)
    assert run.steps_completed == 3
    assert run.validation.n_samples + run.history.epochs["samples_seen"][0] == 200
    assert np.isfinite(run.history.epochs["val_loss"]).all()


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_quoted_files_are_cut_into_byte_ranges_only_when_no_field_holds_a_line_break(
    tmp_path, monkeypatch, eol
):
    monkeypatch.setattr(files, "CSV_SHARD_BYTES", 512)  # many shards from a small file
    X, y = numbers(200)
    plain = ds.data.open(
        quoted_csv(tmp_path / "p.csv", X, y, newlines=False, eol=eol), target="y", features=["a", "b"]
    )
    multi = ds.data.open(quoted_csv(tmp_path / "m.csv", X, y, eol=eol), target="y", features=["a", "b"])
    assert plain.n_samples == multi.n_samples == 200
    assert len(plain.shard_sizes()) > 10  # quotes alone do not force one stream
    assert len(multi.shard_sizes()) == 1  # a cut could fall inside a field: one stream
    model = ds.models.LogisticRegression(dtype="float64")
    ref = ds.fit(model, (X, y), batch_size=16, epochs=2, **FIT)
    for src in (plain, multi):
        params_close(ds.fit(model, src, batch_size=16, epochs=2, **FIT), ref)
        seen = sorted(v for b in src.batches(1, 7, seed=3) for v in b.X[:, 0].tolist())
        assert seen == sorted(X[:, 0].tolist())  # shuffled: every row once


def test_a_quoted_line_break_in_a_compressed_file_or_in_the_header(tmp_path):
    X, y = numbers(50)
    text = quoted_csv(tmp_path / "q.csv", X, y).read_bytes()
    (tmp_path / "q.csv.gz").write_bytes(gzip.compress(text))
    assert ds.data.open(tmp_path / "q.csv.gz", target="y", features=["a", "b"]).n_samples == 50
    header = tmp_path / "h.csv"
    header.write_text('a,"two\nline name",y\n' + "".join(f"{i},{i},{i % 2}\n" for i in range(30)))
    src = ds.data.open(header, target="y")
    assert src.feature_names == ("a", "two\nline name") and src.n_samples == 30
    assert sum(b.size for b in src.batches(0, 8)) == 30


# ---------------------------------------------------------------- blank lines, empty files


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("tail", ["", "EOL", "EOLEOL", "EOLEOLEOL"])
def test_trailing_and_inner_blank_lines_are_not_bad_rows(tmp_path, eol, tail):
    rows = ["1,2,0", "3,4,1", "", "5,6,0", "7,8,1"]
    path = write_rows(tmp_path / "blank.csv", "a,b,y", rows, eol=eol, tail=tail.replace("EOL", eol))
    src = ds.data.open(path, target="y")
    assert src.n_samples == 4
    run = ds.fit("logistic_regression", src, batch_size=2, epochs=2, **FIT)
    assert run.history.epochs["samples_seen"][-1] == 8
    skip = ds.data.open(path, target="y", on_bad_rows="skip")
    assert ds.fit("logistic_regression", skip, epochs=1, **FIT).skipped_rows == {}


def test_lines_ended_by_a_lone_cr_are_rows(tmp_path):
    (tmp_path / "mac.csv").write_bytes(b"a,b,y\r1,2,0\r3,4,1\r\r5,6,0")
    (tmp_path / "mixed.csv").write_bytes(b"a,b,y\r1,2,0\r\n3,4,1\n")
    for name, n in [("mac.csv", 3), ("mixed.csv", 2)]:
        src = ds.data.open(tmp_path / name, target="y")
        assert src.n_samples == n
        assert sorted(v for b in src.batches(0, 2) for v in b.X[:, 0].tolist()) == [1, 3, 5][:n]


def test_a_file_with_a_header_but_no_rows_is_named(tmp_path):
    for name, text in [("h.csv", "a,b,y\n"), ("hb.csv", "a,b,y\n\n\n"), ("hn.csv", "a,b,y")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=rf"{name}' has a header but no data rows"):
            ds.data.open(tmp_path / name, target="y")


def test_a_source_never_ends_an_epoch_short_of_the_rows_it_reported():
    class Overstated(DataSource):  # says 10 rows, holds 6
        n_features = 1

        def shard_sizes(self):
            return [10]

        def read_shard(self, shard, skip=0):
            yield Chunk(np.ones((6 - skip, 1)), np.zeros(6 - skip), np.arange(skip, 6), "x")

    with pytest.raises(DataError, match=r"ended after 6 of the 10 rows"):
        list(Overstated().batches(0, None))
    with pytest.raises(DataError, match=r"ended after 6 of the 10 rows"):
        list(Overstated().batches(0, 4))


# ---------------------------------------------------------------- columns and encodings


def test_duplicate_column_names_are_an_error_naming_them(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,y,b,c\n1,2,3,0,5,6\n4,5,6,1,7,8\n")
    with pytest.raises(DataError, match=r"dup\.csv' has duplicate column names: 'a', 'b'"):
        ds.data.open(path, target="y")
    with pytest.raises(DataError, match=r"dup\.csv' has duplicate column names: 'a';"):
        ds.data.open(path, target="y", features=["a", "c"])
    assert ds.data.open(path, target="y", features=["c"]).n_samples == 2  # the twins are not read
    table = pa.Table.from_arrays([pa.array([1.0, 2.0])] * 2 + [pa.array([0, 1])], names=["x", "x", "y"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"duplicate column names: 'x'"):
        ds.data.open(tmp_path / "dup.parquet", target="y")


def test_bytes_that_are_not_utf8_are_named_with_the_file_and_row(tmp_path, monkeypatch):
    cases = {
        "feature.csv": (b"a,b,y\n1,2,0\n3,\xff,1\n", r"row 2, column 'b'"),
        "target.csv": (b"a,b,y\n1,2,no\n3,4,s\xffi\n", r"row 2, column 'y'"),
        "header.csv": (b"a,b\xff,y\n1,2,0\n3,4,1\n", r"the header \(line 1, byte offset 3\)"),
    }
    for name, (data, where) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=rf"{name}'?: {where}.* not valid UTF-8.*encoding="):
            src = ds.data.open(tmp_path / name, target="y")
            ds.fit("logistic_regression", src, epochs=1, **FIT)
    # a bad byte past the part read to learn the column types is met while reading
    monkeypatch.setattr(files, "PEEK_BYTES", 64)
    rows = [f"{i},{i % 2}" for i in range(40)]
    late = tmp_path / "late.csv"
    late.write_bytes(("a,y\n" + "\n".join(rows) + "\n").encode() + b"7\xe9,1\n")
    for mode in ("raise", "skip"):
        with pytest.raises(DataError, match=r"late\.csv: row 41, column 'a'.* not valid UTF-8"):
            ds.fit("logistic_regression", ds.data.open(late, target="y", on_bad_rows=mode), epochs=1, **FIT)


def test_an_encoding_can_be_named(tmp_path):
    path = tmp_path / "latin.csv"
    labels = ["caf\xe9", "th\xe9"]
    path.write_bytes(
        ("a,b,y\n" + "".join(f"{i},{-i},{labels[i % 2]}\n" for i in range(20))).encode("latin-1")
    )
    src = ds.data.open(path, target="y", encoding="latin-1")
    run = ds.fit("logistic_regression", src, epochs=2, **FIT)
    assert sorted(run.labels.classes.tolist()) == sorted(labels)
    with pytest.raises(ParameterError, match=r"encoding must be an ASCII-compatible"):
        ds.data.open(path, target="y", encoding="utf-16")
    with pytest.raises(ParameterError, match=r"unknown encoding 'klingon'"):
        ds.data.open(path, target="y", encoding="klingon")


# ---------------------------------------------------------------- file types


@pytest.mark.parametrize("name", ["t.tsv", "t.tsv.gz", "t.csv.bz2", "t.csv.zst", "t.csv.lz4", "t.tsv.bz2"])
def test_every_listed_file_type_reads_like_memory(tmp_path, name):
    X, y = numbers(120)
    sep = "\t" if ".tsv" in name else ","
    text = f"a{sep}b{sep}y\n" + "".join(
        f"{float(X[i, 0])!r}{sep}{float(X[i, 1])!r}{sep}{y[i]}\n" for i in range(120)
    )
    path = tmp_path / name
    codec = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}.get(path.suffix)
    if codec is None:
        path.write_text(text)
    else:
        with pa.output_stream(path, compression=codec) as out:
            out.write(text.encode())
    src = ds.data.open(path, target="y")
    assert src.n_samples == 120 and src.feature_names == ("a", "b")
    model = ds.models.LogisticRegression(dtype="float64")
    params_close(
        ds.fit(model, src, batch_size=32, epochs=2, **FIT),
        ds.fit(model, (X, y), batch_size=32, epochs=2, **FIT),
    )
    assert ds.data.open(tmp_path, target="y").n_samples == 120  # a directory lists it too


def test_an_unlisted_file_type_is_refused_with_the_list(tmp_path):
    (tmp_path / "t.csv.xz").write_bytes(b"\xfd7zXZ")
    with pytest.raises(ValueError, match=r"unsupported file type .*\.csv\.xz.*\.tsv.*\.bz2"):
        ds.data.open(tmp_path / "t.csv.xz", target="y")


# ---------------------------------------------------------------- files that change under a run


def grow(path, text):
    with open(path, "a") as fh:
        fh.write(text)


def rewrite_same_size(path):
    data = path.read_bytes()
    st = path.stat()
    path.write_bytes(data.replace(b"1,", b"2,", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a clock that did not tick stays seen


def csv_rows(n):
    return "a,b,y\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(n))


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda p: p.write_text(csv_rows(50)), r"size \d+ -> \d+ bytes"),
        (lambda p: grow(p, "1,2,0\n"), r"size \d+ -> \d+ bytes"),
        (rewrite_same_size, r"modified"),
        (lambda p: (p.unlink(), p.write_text(csv_rows(100))), r"(?:replaced|modified)"),
        (lambda p: p.unlink(), r"deleted or moved"),
    ],
)
def test_a_csv_changed_after_open_is_named_before_an_epoch_reads_it(tmp_path, change, what):
    path = tmp_path / "churn.csv"
    path.write_text(csv_rows(100))
    src = ds.data.open(path, target="y")
    assert src.n_samples == 100
    change(path)
    message = rf"churn\.csv' changed after ds\.data\.open.*\({what}[^)]*\); reopen"
    with pytest.raises(FileChangedError, match=message):
        list(src.batches(0, 10))
    with pytest.raises(FileChangedError, match=message):  # met by fit's pass over the classes
        ds.fit("logistic_regression", src, epochs=1, **FIT)


@pytest.mark.parametrize("when", ["epoch", "step"])
@pytest.mark.parametrize("name", ["churn.csv", "churn.csv.gz", "churn.parquet"])
def test_a_file_changed_between_epochs_or_mid_epoch_stops_the_run(tmp_path, monkeypatch, name, when):
    monkeypatch.setattr(files, "CSV_SHARD_BYTES", 256)
    monkeypatch.setattr(files, "CHUNK_ROWS", 16)
    path = tmp_path / name
    X, y = numbers(300)
    if name.endswith(".parquet"):
        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": y}), path, row_group_size=50)
    else:
        text = "a,b,y\n" + "".join(f"{float(X[i, 0])!r},{float(X[i, 1])!r},{y[i]}\n" for i in range(300))
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    original = path.read_bytes()
    src = ds.data.open(path, target="y", window=32)
    steps = []

    class Change(ds.train.callbacks.Callback):
        def on_step_end(self, run, info):
            steps.append(info["step"])
            if when == "step" and len(steps) == 2:
                path.write_bytes(original[: len(original) // 2])

        def on_epoch_end(self, run, row):
            if when == "epoch":
                path.write_bytes(original + original[-40:])

    with pytest.raises(FileChangedError, match=rf"{name}' changed after ds\.data\.open"):
        ds.fit("logistic_regression", src, batch_size=10, epochs=3, callbacks=[Change()], **FIT)
    if when == "epoch":
        assert len(steps) == 30  # the whole first epoch, nothing of the second
    elif not name.endswith(".gz"):  # (the small .gz stream was read whole before the change)
        assert len(steps) < 30  # stopped within the epoch that met the change


def test_a_parquet_file_rewritten_with_other_row_groups_is_named(tmp_path, monkeypatch):
    X, y = numbers(200)
    path = tmp_path / "rg.parquet"
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "y": y})
    pq.write_table(table, path, row_group_size=50)
    src = ds.data.open(path, target="y")
    assert src.shard_sizes() == [50, 50, 50, 50]
    pq.write_table(table, path, row_group_size=80)
    with pytest.raises(FileChangedError, match=r"rg\.parquet' changed"):
        list(src.batches(0, 10))
    # a rewrite that stat cannot see (same size and time) is still caught by the row groups
    src = ds.data.open(path, target="y")
    pq.write_table(table, path, row_group_size=30)
    monkeypatch.setattr(src, "_stamps", [files.FileStamp.of(path)])
    with pytest.raises(FileChangedError, match=r"row groups .*3 groups of 200 rows -> 7 groups of 200 rows"):
        list(src.batches(0, 10))


def test_resume_from_a_checkpoint_needs_the_same_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(csv_rows(120))
    kw = dict(batch_size=16, epochs=2, checkpoint_dir=tmp_path / "ck", checkpoint_every=1, **FIT)
    first = ds.fit("logistic_regression", ds.data.open(path, target="y"), **kw)
    again = ds.fit("logistic_regression", ds.data.open(path, target="y"), resume=True, **kw)
    params_close(first, again, rtol=0)
    text = csv_rows(120)
    merged = text[: text.rindex("118,")]
    merged += "118,-1".ljust(len(text) - len(merged) - 3, "0") + ",0\n"  # one row fewer, same size
    path.write_text(merged)
    assert path.stat().st_size == len(text) and ds.data.open(path, target="y").n_samples == 119
    with pytest.raises(ValueError, match=r"refusing to resume"):
        ds.fit("logistic_regression", ds.data.open(path, target="y"), resume=True, **kw)


# ---------------------------------------------------------------- bad cells in a long stream


def test_a_bad_cell_late_in_a_stream_neither_repeats_nor_loses_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "STREAM_BLOCK_BYTES", 1 << 10)
    rows = [f"{i},{i % 2}" for i in range(2000)]
    rows[1500] = "x,1"
    path = tmp_path / "late.csv.gz"
    path.write_bytes(gzip.compress(("a,y\n" + "\n".join(rows) + "\n").encode()))
    src = ds.data.open(path, target="y", on_bad_rows="skip")
    seen = sorted(int(v) for b in src.batches(0, 100, shuffle=False) for v in b.X[:, 0])
    assert seen == [i for i in range(2000) if i != 1500]
    assert src.n_samples == 1999 and src.skipped == {"late.csv.gz": 1}
    with pytest.raises(DataError, match=r"late\.csv\.gz: row 1501, column 'a': 'x' is not a number"):
        list(ds.data.open(path, target="y").batches(0, 100, shuffle=False))


def test_line_counts_match_a_naive_count():
    rng = np.random.default_rng(5)
    for _ in range(300):
        data = b"".join(rng.choice([b"a", b"\n", b"\r", b'"', b","], size=rng.integers(0, 40))) + b"\n"
        lines = data.split(b"\n")[:-1]
        rows = sum(line not in (b"", b"\r") for line in lines)
        lone_cr = any(data[i + 1 : i + 2] != b"\n" for i in range(len(data)) if data[i : i + 1] == b"\r")
        assert files._line_counts(data) == (rows, b'"' in data, lone_cr), data
