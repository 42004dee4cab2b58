"""Training throughput from files: Parquet vs pyarrow alone, .npy vs memory, peak memory vs file size.

Run: ``python -m benchmarks data [-- --rows N --repeats R]``. Writes its section of
``docs/benchmarks.md`` and prints it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, machine, median, versions, write_section

# isort: split
import descend as ds  # after benchmarks._common, which puts this checkout's src first
from descend.data.synth import make_data


def train_rate(src, batch_size: int, shuffle: bool) -> float:
    n = src.n_samples
    t = time.perf_counter()
    ds.fit(
        "logistic_regression",
        src,
        classes=[0, 1],
        batch_size=batch_size,
        epochs=1,
        shuffle=shuffle,
        progress=False,
        optimizer="adam",
        lr=1e-3,
        standardize=False,  # an epoch's throughput: no one-time pass for classes or scaling
    )
    return n / (time.perf_counter() - t)


def pyarrow_rate(path: Path, batch_size: int) -> float:
    """pyarrow alone: iterate the file in batches of the same size, as a float32 matrix + labels."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = [c for c in pf.schema_arrow.names if c != "y"]
    t = time.perf_counter()
    n = 0
    for rb in pf.iter_batches(batch_size=batch_size):
        X = np.column_stack([rb.column(c).to_numpy() for c in names])
        y = rb.column("y").to_numpy()
        n += len(y) + 0 * X.shape[0]
    return n / (time.perf_counter() - t)


RSS = """
import sys
sys.path.insert(0, {src!r})
import descend as ds
src = ds.data.open(sys.argv[1], target="y")
ds.fit("logistic_regression", src, classes=[0, 1], batch_size=512, epochs=1, progress=False)
# VmHWM: this process's own peak (ru_maxrss would keep the parent's peak across fork + exec)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def peak_rss_mb(path: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", RSS.format(src=str(ROOT / "src")), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1]) / 1024


def median_alternating(fns: dict, repeats: int) -> dict[str, float]:
    """Rows/s of each contender: ``repeats`` rounds, the contenders alternating in every round."""
    got: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            got[k].append(f())
    return {k: median(v) for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args, _ = ap.parse_known_args()
    tmp = Path(tempfile.mkdtemp(prefix="descend-bench-"))
    pq_path = tmp / "d.parquet"
    make_data(pq_path, rows=args.rows, features=args.features, format="parquet")
    npy = make_data(tmp / "d.npy", rows=args.rows, features=args.features, format="npy")
    X, y = np.load(npy[0]), np.load(npy[1])
    rows = []
    for B in (256, 4096):
        src = ds.data.open(pq_path, target="y")
        mm = ds.data.open(npy[0], target=npy[1])
        mem = ds.data.ArraySource(X, y)
        r = median_alternating(
            {
                "pyarrow": lambda B=B: pyarrow_rate(pq_path, B),
                "parquet": lambda B=B, src=src: train_rate(src, B, False),
                "parquet_shuffled": lambda B=B, src=src: train_rate(src, B, True),
                "npy": lambda B=B, mm=mm: train_rate(mm, B, True),
                "memory": lambda B=B, mem=mem: train_rate(mem, B, True),
            },
            args.repeats,
        )
        rows.append((B, r))
    big = tmp / "big.parquet"
    make_data(big, rows=4 * args.rows, features=args.features, format="parquet")
    mem_rows = [(p, p.stat().st_size / 2**20, peak_rss_mb(p)) for p in (pq_path, big)]
    lines = [
        "## Data: training from files",
        "",
        f"Command: `python -m benchmarks data -- --rows {args.rows} --features {args.features} "
        f"--repeats {args.repeats}`. Machine: {machine()}. {versions('numpy', 'pyarrow')}.",
        "Logistic regression, Adam, one epoch (classes given, no scaling: no one-time pass over the "
        "file); rows/s are medians of alternating repeats in one run.",
        "",
        "| batch | pyarrow alone (rows/s) | Parquet in order | Parquet shuffled | ratio to pyarrow "
        "(in order / shuffled) | .npy (memmap, shuffled) | in memory (shuffled) | .npy / memory |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for B, r in rows:
        lines.append(
            f"| {B} | {r['pyarrow']:,.0f} | {r['parquet']:,.0f} | {r['parquet_shuffled']:,.0f} | "
            f"{r['parquet'] / r['pyarrow']:.2f} / {r['parquet_shuffled'] / r['pyarrow']:.2f} | "
            f"{r['npy']:,.0f} | {r['memory']:,.0f} | {r['npy'] / r['memory']:.2f} |"
        )
    lines += [
        "",
        "Peak memory (VmHWM of a fresh process opening the file and training one epoch, batch 512):",
        "",
        "| file | size (MiB) | peak RSS (MiB) |",
        "|---|---:|---:|",
    ]
    for p, size, rss in mem_rows:
        lines.append(f"| {p.name} ({'4×' if p == big else '1×'} rows) | {size:,.0f} | {rss:,.0f} |")
    section = "\n".join(lines)
    print(section)
    write_section("data", section)


if __name__ == "__main__":
    main()
