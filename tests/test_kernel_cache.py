"""Compiled kernels are always the code asked for, whatever numba's disk cache holds.

Every test here runs steps in fresh interpreters over a cache directory of its own
(``DESCEND_CACHE_DIR``) and compares each fused result with the NumPy reference, bit for bit
in float64 and to float32 rounding: a wrong kernel handed back by a cache would show as a
wrong number (or a crash), not only as a slow start.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import descend as ds

pytest.importorskip("numba")

SRC = Path(ds.__file__).resolve().parents[1]
TESTS = str(Path(__file__).resolve().parent)

#: one process's work: steps of the rules named in ``CASES`` (a list of (registry name,
#: variant index or -1, dtype, leaf sizes, threads)), fused and reference side by side.
CHECK = """
import json, sys
import numpy as np, descend as ds
from optim_registry import REGISTRY

by_name = {info.name: info for info in REGISTRY}
for name, variant, dtype, sizes, threads in json.loads(sys.argv[1]):
    info = by_name[name]
    kwargs = info.variants[variant] if variant >= 0 else info.quadratic
    ds.optim.set_backend(threads=threads)
    rng = np.random.default_rng(len(sizes) * 1000 + sum(sizes))
    start = [rng.normal(size=n).astype(dtype) for n in sizes]
    fast, slow = [p.copy() for p in start], [p.copy() for p in start]
    o_fast, o_slow = info.make(**kwargs, fused=True), info.make(**kwargs, fused=False)
    s_fast, s_slow = o_fast.init(fast), o_slow.init(slow)
    for k in range(4):
        g = [np.sin(p * (k + 1)).astype(dtype) + np.asarray(0.1 * k, dtype) for p in start]
        o_fast.step(fast, g, s_fast)
        o_slow.step(slow, g, s_slow)
    tol = 1e-12 if dtype == "float64" else 1e-6
    for a, b in zip(fast, slow):
        if not np.allclose(a, b, rtol=tol, atol=0):
            print("MISMATCH", name, variant, dtype, sizes, threads, float(np.max(np.abs(a - b))))
            sys.exit(3)
print("ok")
"""

ISSUE_FIRST = """
import numpy as np, descend as ds, sys
n = int(sys.argv[1])
p = [np.ones(2000, np.float32) for _ in range(n)]
o = ds.SGD(lr=1e-3); s = o.init(p)
for _ in range(3):
    o.step(p, [np.ones(2000, np.float32)] * n, s)
assert all(np.allclose(x, 1 - 3e-3, rtol=1e-6) for x in p)
print("ok")
"""

ISSUE_SECOND = """
import numpy as np, descend as ds
w = [np.zeros(1024, np.float32)]; o = ds.Nesterov(lr=0.01); s = o.init(w)
for _ in range(2):
    o.step(w, [np.ones(1024, np.float32)], s)
m = [np.zeros(n, np.float32) for n in (1024, 32, 256, 8)]
o2 = ds.SGD(lr=0.01); o2.step(m, [np.ones_like(x) for x in m], o2.init(m))
# Nesterov, mu = 0.9: b1 = 1, p1 = -0.01 * 1.9; b2 = 1.9, p2 = p1 - 0.01 * (1 + 0.9 * 1.9)
assert np.allclose(w[0], -0.019 - 0.0271, rtol=1e-6), w[0][:3]
assert all(np.allclose(x, -0.01, rtol=1e-6) for x in m)
print("ok")
"""


def python(code: str, *args: str, cache: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), TESTS]),
        "DESCEND_CACHE_DIR": str(cache),
        **env,
    }
    environment.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    if check:
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-3000:])
        assert done.stdout.strip().endswith("ok"), done.stdout
    return done


def numba_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_the_issue_reproductions_run_in_either_order(tmp_path):
    """The three lines that crashed with a filled cache (exit 139), each twice."""
    for _ in range(2):
        python(ISSUE_FIRST, "1", cache=tmp_path)
        python(ISSUE_FIRST, "4", cache=tmp_path)
    for _ in range(2):
        python(ISSUE_SECOND, cache=tmp_path)
    assert numba_files(tmp_path)  # the cache was used, not bypassed


def test_nothing_is_cached_beside_the_installed_package(tmp_path):
    """The cache lives in descend's own directory, so a read-only install keeps it working."""
    package = Path(ds.__file__).resolve().parent
    before = {p for p in package.rglob("*") if p.suffix in (".nbi", ".nbc")}
    python(ISSUE_SECOND, cache=tmp_path)
    after = {p for p in package.rglob("*") if p.suffix in (".nbi", ".nbc")}
    assert after == before


def random_cases(rng: random.Random, count: int) -> list[list]:
    from optim_registry import FUSED

    cases = []
    for _ in range(count):
        info = rng.choice(FUSED)
        variant = rng.randrange(-1, len(info.variants))
        dtype = rng.choice(["float32", "float64"])
        leaves = rng.choice([1, 2, 4, 6])
        sizes = [rng.choice([3, 600, 1500]) for _ in range(leaves)]
        threads = rng.choice([1, 2, 3])
        cases.append([info.name, variant, dtype, sizes, threads])
    return cases


@pytest.mark.slow
def test_random_sequences_in_many_processes_over_one_cache(tmp_path):
    """Processes started together, each a random sequence of rules, options, dtypes, leaf
    counts (below and above the address-table threshold) and thread counts, all over one
    cache directory; every result equal to the NumPy reference. Two waves: the first
    compiles into an empty cache concurrently, the second reads what the first wrote."""
    import json

    rng = random.Random(20261203)
    for wave in range(2):
        procs = []
        for _ in range(4):
            cases = json.dumps(random_cases(rng, 5))
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(SRC), TESTS]),
                "DESCEND_CACHE_DIR": str(tmp_path),
            }
            env.pop("NUMBA_CACHE_DIR", None)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", CHECK, cases],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0 and out.strip() == "ok", (wave, proc.returncode, out, err[-3000:])


def same_rule_cases() -> str:
    import json

    # one rule in several settings of its compiled-in flags: the builds whose code differs only
    # in those constants, which numba's own key does not see
    return json.dumps(
        [
            ["sgd", -1, "float32", [600], 1],
            ["sgd", 0, "float32", [600], 1],
            ["sgd", 1, "float32", [600], 1],
            ["sgd", 1, "float32", [600, 3, 1500, 3], 1],
            ["sgd", 0, "float64", [600, 3, 1500, 3], 2],
        ]
    )


def test_a_cache_of_another_version_is_never_used(tmp_path):
    """A cache directory filled by another descend version (the version is part of every
    build's text, so of its file name): this version builds its own and steps exactly."""
    other = "import descend; descend.__version__ = '0.0.0-other'\n" + CHECK
    python(other, same_rule_cases(), cache=tmp_path)
    theirs = set(tmp_path.glob("k_*.py"))
    python(CHECK, same_rule_cases(), cache=tmp_path)
    ours = set(tmp_path.glob("k_*.py")) - theirs
    assert ours and len(ours) == len(theirs)
    assert all("0.0.0-other" in p.read_text() for p in theirs)
    assert not any("0.0.0-other" in p.read_text() for p in ours)


def test_cache_entries_swapped_between_builds_are_not_trusted(tmp_path):
    """Deliberately stale: every cached index and data file of one build copied over those of
    another build of the same function name (SGD with other flags). numba's stamp of the
    source file tells them apart, so each build is compiled again and exact."""
    python(CHECK, same_rule_cases(), cache=tmp_path)
    pycache = tmp_path / "__pycache__"
    kernels = sorted(pycache.glob("*.kernel-*.nbi"))
    assert len(kernels) >= 3
    names = [(p, sorted(pycache.glob(p.name.replace(".nbi", ".*.nbc")))) for p in kernels]
    source, source_data = names[0]
    for index, data in names[1:]:
        shutil.copyfile(source, index)
        for d in data:
            shutil.copyfile(source_data[0], d)
    python(CHECK, same_rule_cases(), cache=tmp_path)


def test_a_truncated_cache_file_is_compiled_again(tmp_path):
    """Index and data files cut mid-write: the step is exact, and the cache is repaired."""
    python(CHECK, same_rule_cases(), cache=tmp_path)
    files = numba_files(tmp_path)
    assert files
    for i, path in enumerate(files):
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size // 2 if i % 2 else 7)
    python(CHECK, same_rule_cases(), cache=tmp_path)
    count = """
        import json, sys
        from descend.optim import _compile
        exec(open(sys.argv[2]).read().replace("print(\\"ok\\")", ""))
        hits = sum(sum(d.stats.cache_hits.values()) for d in _compile.dispatchers())
        misses = sum(sum(d.stats.cache_misses.values()) for d in _compile.dispatchers())
        assert hits > 0 and misses == 0, (hits, misses)
        print("ok")
    """
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    python(count, same_rule_cases(), str(script), cache=tmp_path)


def test_an_edited_kernel_file_is_not_what_runs(tmp_path):
    """descend compiles the text it generates: a module file someone changed is rewritten,
    and its contents never run."""
    python(CHECK, same_rule_cases(), cache=tmp_path)
    marker = tmp_path / "ran"
    for path in tmp_path.glob("k_*.py"):
        path.write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(5)\n")
    python(CHECK, same_rule_cases(), cache=tmp_path)
    assert not marker.exists()
    assert all(p.read_text().startswith("# descend fused kernels") for p in tmp_path.glob("k_*.py"))


def test_a_cache_directory_others_can_write_to_is_not_used(tmp_path):
    """numba loads its cache files as they are (pickles and machine code): a directory another
    user can write to could plant them, so descend compiles in the process instead."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    check = """
        from descend.optim import _compile
        assert _compile.cache_dir() is None and _compile.dispatchers()
        print("ok")
    """
    python(ISSUE_SECOND.replace('print("ok")', "") + textwrap.dedent(check), cache=shared)
    assert not numba_files(shared) and not list(shared.glob("k_*.py"))
    private = tmp_path / "private"
    python(ISSUE_SECOND, cache=private)
    assert private.stat().st_mode & 0o777 == 0o700 and numba_files(private)
