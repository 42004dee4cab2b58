"""Which code runs an update: numba-fused kernels (the default where numba imports) or NumPy.

Nothing here imports numba until the first fused step, so ``import descend`` stays cheap.
Each rule's ``_kernel`` is a plain-Python loop over the elements of one parameter array;
:mod:`descend.optim._compile` compiles it with numba (``nogil``, no fast-math) the first time
it runs, one generated module per rule setting, dtype and arity, cached on disk under a name
that is the hash of everything the build depends on.

A step's work is spread over threads: long arrays are cut into contiguous pieces and short
ones grouped, two groups of about equal length per thread; the calling thread and up to
``threads - 1`` helpers take groups as they come free and run the compiled kernel on them
with the GIL released. A step uses one more thread per :data:`MIN_BYTES_PER_THREAD` bytes it
reads and writes; smaller steps stay on the calling thread.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import check_choice, check_int, wrong_type

if TYPE_CHECKING:
    from . import _compile

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["BACKENDS", "MIN_BYTES_PER_THREAD", "MIN_FUSED", "MIN_PER_THREAD", "get_backend", "set_backend"]

#: accepted by :func:`set_backend` (and the ``DESCEND_BACKEND`` environment variable).
BACKENDS = ("auto", "numba", "numpy")
#: a step uses one more thread (up to the thread count) per this many bytes of memory it reads
#: and writes (every array of the update, and the gradient once more for the NaN search).
#: Handing work to a sleeping thread and waiting for it costs 50-400 us on the 2-core VM the
#: benchmarks run on, and two threads beat one from 16-32 MB moved (from run to run):
#: ``python -m benchmarks optim`` measures the step on one and on two threads by size.
MIN_BYTES_PER_THREAD = 24 << 20
#: no group of a multi-threaded step is shorter than this many elements.
MIN_PER_THREAD = 1 << 16
#: with ``fused=None``, steps with fewer parameters than this take the NumPy path: for a
#: model this small the kernel calls cost more than NumPy's few operations.
MIN_FUSED = 512
#: dtypes the kernels are compiled for; other floating dtypes take the NumPy path.
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_setting = os.environ.get("DESCEND_BACKEND", "auto")
if _setting not in BACKENDS:
    raise ValueError(f"DESCEND_BACKEND must be one of {', '.join(BACKENDS)}, got {_setting!r}")
_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_numba: Any = None  # the numba module once imported; False when it cannot be imported
_import_error: BaseException | None = None
_plans: dict[tuple[Any, ...], list[list[tuple[int, int, int]]]] = {}  # see _plan
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)  # (pid, threads) of the pool: a fork or more threads need a new one


def set_backend(name: str | None = None, *, threads: int | None = None) -> None:
    """Choose the backend of every optimizer built with ``fused=None`` (the default).

    ``name="auto"``: numba's fused kernels when numba imports, else NumPy (the initial
    setting, or the value of the ``DESCEND_BACKEND`` environment variable). ``"numba"``: the
    fused kernels, raising ``ImportError`` now if numba is missing. ``"numpy"``: the plain
    NumPy reference updates. ``None`` keeps the current choice. Either way a step of fewer
    than :data:`MIN_FUSED` parameters runs in NumPy, and an optimizer's own
    ``fused=True``/``False`` takes precedence.

    ``threads``: how many threads a fused step may use (``>= 1``; initially the number of
    CPUs this process may run on). Small steps use fewer.

    >>> import descend as ds
    >>> ds.optim.set_backend("numpy"); ds.optim.get_backend()
    'numpy'
    >>> ds.optim.set_backend("auto")
    """
    global _setting, _threads
    if name is not None:
        check_choice("set_backend", "name", name, BACKENDS)
        if name == "numba":
            require_numba("set_backend")
        _setting = name
    if threads is not None:
        _threads = check_int("set_backend", "threads", threads, low=1)


def get_backend() -> str:
    """The backend an optimizer with ``fused=None`` uses now: ``"numba"`` or ``"numpy"``.

    With the ``"auto"`` setting this imports numba to find out whether it works.
    """
    return "numba" if use_fused(None) else "numpy"


def check_fused(owner: str, fused: Any) -> bool | None:
    """Validate an optimizer's ``fused`` option; ``True`` needs numba installed."""
    if fused is not None and not isinstance(fused, (bool, np.bool_)):
        raise wrong_type(owner, "fused", fused, "True, False or None")
    if fused:
        require_numba(owner)
    return None if fused is None else bool(fused)


def require_numba(owner: str) -> None:
    """Raise ``ImportError`` (naming ``owner``) unless numba can be imported."""
    if not _load_numba():
        raise ImportError(
            f"{owner}: fused kernels need numba, which could not be imported ({_import_error!r}); "
            "install numba or use fused=False / set_backend('numpy')"
        ) from _import_error


def use_fused(fused: bool | None) -> bool:
    """Whether an optimizer whose ``fused`` option is ``fused`` runs the kernels now."""
    if fused is None:
        if _setting == "numpy":
            return False
        if _setting == "numba":
            require_numba("DESCEND_BACKEND=numba")
        return _load_numba()
    return fused


def _load_numba() -> bool:
    global _numba, _import_error
    if _numba is None:
        try:
            import numba
        except Exception as exc:  # missing, or installed but unusable (e.g. a NumPy it rejects)
            _numba, _import_error = False, exc
        else:
            _numba = numba
    return _numba is not False


# -- compiling and running ------------------------------------------------------------------------
def _units(
    factory: Callable[..., Any],
    flags: tuple[bool, ...],
    jobs: Sequence[tuple[tuple[np.ndarray, ...], tuple[Any, ...]]],
) -> dict[np.dtype, _compile.Unit]:
    """The compiled unit of kernel ``factory(*flags)`` for each dtype among the jobs (see
    :mod:`descend.optim._compile`: one generated module per rule setting, dtype and arity)."""
    from . import _compile  # only on a fused step: import descend need not load it

    units: dict[np.dtype, _compile.Unit] = {}
    for arrays, extra in jobs:
        dtype = arrays[0].dtype
        if dtype not in units:
            if len(extra) != 1:
                raise TypeError(f"a kernel takes its arrays then one tuple of coefficients, got {len(extra)}")
            units[dtype] = _compile.kernel_unit(factory, flags, dtype, len(arrays), len(extra[0]))
    return units


def _searches(dtypes: Any) -> dict[np.dtype, _compile.Unit]:
    from . import _compile

    return {dtype: _compile.search_unit(_nonfinite_search, dtype) for dtype in dtypes}


def _plan(sizes: tuple[int, ...], moved: int) -> list[list[tuple[int, int, int]]]:
    """The step cut into groups of pieces ``(job, lo, hi)`` of about equal length: two groups
    per thread used (so a thread that gets the CPU late finds less left to do, while few
    hand-offs of the GIL between threads), none shorter than :data:`MIN_PER_THREAD` elements;
    one group when a second thread is not worth waking. ``moved``: the bytes the whole step
    reads and writes, which with :data:`MIN_BYTES_PER_THREAD` sets how many threads are used."""
    key = (sizes, moved, _threads, MIN_BYTES_PER_THREAD, MIN_PER_THREAD)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    total = sum(sizes)
    threads = min(_threads, 1 + moved // max(1, MIN_BYTES_PER_THREAD))
    n_groups = 1 if threads == 1 else max(1, min(2 * threads, total // MIN_PER_THREAD))
    target = -(-total // n_groups)
    target = -(-target // 1024) * 1024  # piece boundaries on whole cache lines
    plan, group, fill = [], [], 0
    for job, size in enumerate(sizes):
        lo = 0
        while lo < size:
            last = len(plan) == n_groups - 1
            take = size - lo if last else min(size - lo, target - fill)
            group.append((job, lo, lo + take))
            fill += take
            lo += take
            if not last and fill >= target:
                plan.append(group)
                group, fill = [], 0
    if group or not plan:
        plan.append(group)
    if len(_plans) > 64:
        _plans.clear()
    _plans[key] = plan
    return plan


def moved_bytes(arrays: Sequence[np.ndarray]) -> int:
    """Bytes one kernel call on ``arrays`` = ``(p, *buffers)`` (absent buffers empty) and a
    gradient like ``p`` reads and writes: ``p`` and each buffer read and written, the gradient
    read (the NaN search reads it once more: ``p.nbytes`` on top)."""
    return arrays[0].nbytes * (2 * sum(1 for a in arrays if a.size) + 1)


def _parallel_for(
    groups: list[Any], work: Callable[[Any], None], search: Callable[[Any], bool] | None = None
) -> bool:
    """``work(group)`` for every group, by this thread and up to ``threads - 1`` helpers that
    take groups as they come free. With ``search``, ``search(group)`` first runs for every
    group the same way, and ``work`` only once all have returned True; returns False (no
    ``work`` ran) otherwise.

    A helper that is running goes on from the searches to the work without being woken
    again. This thread never waits for a helper that has not started (its task is
    cancelled), only for groups a helper has taken.
    """
    helpers = min(_threads, len(groups)) - 1
    if helpers <= 0:
        if search is not None and not all(search(group) for group in groups):
            return False
        for group in groups:
            work(group)
        return True
    to_search, to_work = itertools.count(), itertools.count()
    searched = [0 if search is not None else len(groups)]
    clean = [True]
    all_searched = threading.Condition()

    def drain() -> None:
        if search is not None:
            for k in to_search:
                if k >= len(groups):
                    break
                try:
                    if not search(groups[k]):
                        clean[0] = False
                except BaseException:
                    clean[0] = False
                    raise
                finally:
                    with all_searched:
                        searched[0] += 1
                        all_searched.notify_all()
            with all_searched:  # every group is searched before any is written
                all_searched.wait_for(lambda: searched[0] == len(groups))
        if clean[0]:
            for k in to_work:
                if k >= len(groups):
                    break
                work(groups[k])

    futures = [_workers().submit(drain) for _ in range(helpers)]
    try:
        drain()
    finally:
        errors = []
        for future in futures:
            if not future.cancel():
                try:
                    future.result()
                except BaseException as exc:
                    errors.append(exc)
    if errors:
        raise errors[0]
    return clean[0]


def _workers() -> ThreadPoolExecutor:
    """The pool of helper threads (``threads - 1`` at most, started as needed); a new one after
    a fork or when ``threads`` grows past the pool's size (a smaller count reuses it: a step
    submits only as many tasks as it has helpers)."""
    from concurrent.futures import ThreadPoolExecutor

    global _pool, _pool_key
    key = (os.getpid(), _threads)
    if _pool is None or _pool_key[0] != key[0] or _pool_key[1] < key[1]:
        if _pool is not None and _pool_key[0] == key[0]:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=max(1, _threads - 1), thread_name_prefix="descend-kernel")
        _pool_key = key
    return _pool


class Layout:
    """How one state's leaves meet the kernels, kept between steps (it depends only on the
    parameter arrays and the state's buffers, which steps update in place).

    ``fast``: indices of the leaves the kernels update, with ``views[k]`` the flat views
    ``(p, *buffers)`` of leaf ``fast[k]`` (an absent buffer is an empty array) and
    ``sizes[k]`` its length; ``slow``: the other leaves (dtype not float32/float64, or not
    C-contiguous), left to the NumPy reference.
    """

    __slots__ = (
        "buffer_lists",
        "fast",
        "grad_bytes",
        "has32",
        "has64",
        "leaves",
        "moved",
        "single",
        "sizes",
        "slow",
        "tables",
        "total",
        "views",
    )

    def __init__(
        self, p_leaves: Sequence[np.ndarray], buffers: dict[str, list[np.ndarray]], names: Sequence[str]
    ):
        self.leaves = tuple(p_leaves)
        self.buffer_lists = tuple(buffers.get(name) for name in names)
        self.fast: list[int] = []
        self.slow: list[int] = []
        self.views: list[tuple[np.ndarray, ...]] = []
        empty = {dt: np.empty(0, dt) for dt in KERNEL_DTYPES}
        for i, p in enumerate(p_leaves):
            bufs = [None if lst is None else lst[i] for lst in self.buffer_lists]
            if (
                p.dtype in KERNEL_DTYPES
                and p.flags.c_contiguous
                and all(x is None or (x.flags.c_contiguous and x.dtype == p.dtype) for x in bufs)
            ):
                self.fast.append(i)
                self.views.append(
                    (p.reshape(-1), *(empty[p.dtype] if x is None else x.reshape(-1) for x in bufs))
                )
            else:
                self.slow.append(i)
        self.sizes = tuple(v[0].size for v in self.views)
        self.single = [v[0].dtype == np.float32 for v in self.views]
        self.has32, self.has64 = any(self.single), not all(self.single)
        self.total = sum(self.sizes)
        #: bytes an unchecked step reads and writes, and the gradient's (read again by a check)
        self.moved = sum(moved_bytes(v) for v in self.views)
        self.grad_bytes = sum(v[0].nbytes for v in self.views)
        self.tables: dict[Any, Any] = {}  # address tables of many-array steps (see run)

    def matches(
        self, p_leaves: Sequence[np.ndarray], buffers: dict[str, list[np.ndarray]], names: Sequence[str]
    ) -> bool:
        return (
            len(p_leaves) == len(self.leaves)
            and all(map(operator.is_, p_leaves, self.leaves))
            and all(map(operator.is_, self.buffer_lists, map(buffers.get, names)))
        )


def run(
    factory: Callable[..., Any],
    flags: tuple[bool, ...],
    jobs: Sequence[tuple[tuple[np.ndarray, ...], tuple[Any, ...]]],
    sizes: tuple[int, ...],
    *,
    check: int | None = None,
    tables: dict[Any, Any] | None = None,
    moved: int | None = None,
) -> int:
    """Run kernel ``factory(*flags)`` as ``kernel(*arrays, *extra)`` for every job
    ``(arrays, extra)``, over threads.

    A job's arrays are 1-D of length ``sizes[job]`` (or empty: an absent buffer, never
    indexed); a long job is cut into pieces ``arrays[lo:hi]``. With ``check=k``, every job's
    ``arrays[k]`` is first searched for NaN or infinity, and if one holds any, no kernel runs
    and the index of the first such job is returned. Returns -1 when the kernels ran.

    ``tables``: a cache owned by the caller, for whom every array but ``arrays[1]`` (the
    gradient) is the same from call to call (a :class:`Layout`'s). With it, a step of at least
    :data:`MANY_ARRAYS` jobs runs as one compiled call per group of pieces (see
    :func:`_run_tables`) instead of one call per piece.

    ``moved``: the bytes the step reads and writes, the check included (which sets how many
    threads it uses); counted here from the jobs when not given (see :func:`moved_bytes`).
    """
    if moved is None:
        searched = sum(a[check].nbytes for a, _ in jobs) if check is not None else 0
        moved = searched + sum(moved_bytes((a[0], *a[2:])) for a, _ in jobs)
    plan = _plan(sizes, moved)
    units = _units(factory, flags, jobs)
    if tables is not None and len(jobs) >= MANY_ARRAYS:
        return _run_tables(units, jobs, plan, tables, check)
    kernels = {dtype: unit["kernel"] for dtype, unit in units.items()}
    searches = {d: u["search"] for d, u in _searches(units).items()} if check is not None else None
    bad: list[int] = []

    def update(pieces: list[tuple[int, int, int]]) -> None:
        for job, lo, hi in pieces:
            arrays, extra = jobs[job]
            if lo or hi != sizes[job]:
                arrays = tuple(a[lo:hi] if a.size else a for a in arrays)
            kernels[arrays[0].dtype](*arrays, *extra)

    def search(pieces: list[tuple[int, int, int]]) -> bool:
        found = False
        for job, lo, hi in pieces:
            x = jobs[job][0][check]
            if searches[x.dtype](x if lo == 0 and hi == sizes[job] else x[lo:hi]):
                bad.append(job)
                found = True
        return not found

    _parallel_for(plan, update, None if searches is None else search)
    return min(bad) if bad else -1


# -- many arrays: one compiled call per group -----------------------------------------------------
#: steps over at least this many arrays run through address tables (one call per group)
MANY_ARRAYS = 4


def _run_tables(
    units: dict[np.dtype, _compile.Unit],
    jobs: Sequence[tuple[tuple[np.ndarray, ...], tuple[Any, ...]]],
    plan: list[list[tuple[int, int, int]]],
    tables: dict[Any, Any],
    check: int | None,
) -> int:
    """:func:`run` for many arrays, each group of pieces in one compiled call.

    A call from Python into a kernel holds the GIL while its arguments are unboxed; with one
    call per array, two threads stepping 400 arrays spend more time handing the GIL to each
    other than updating (the step ran slower on two threads than on one). Here each group's
    pieces are rows of an address table, ``(address, length)`` of every array of the piece,
    and a compiled driver (``drive`` in the kernel's unit) views them with ``numba.carray``
    and calls the kernel on each: one GIL hand-off per group. The tables are built once per
    layout and plan (a checked and an unchecked step keep one set each); each step only
    writes the gradients' addresses into them.
    """
    n_arrays = len(jobs[0][0])
    key = (n_arrays, check is not None)  # a checked and an unchecked step may differ in plan
    template = tables.get(key)
    if template is None or template[0] is not plan:
        template = tables[key] = (plan, _address_tables(jobs, plan))
    # the gradients are the only arrays that change between calls: their addresses, per job
    searches = _searches(units)
    address = {dtype: unit["address"] for dtype, unit in searches.items()}
    grads = [np.ascontiguousarray(arrays[1]) for arrays, _ in jobs]
    base = np.fromiter((address[g.dtype](g) for g in grads), dtype=np.intp, count=len(grads))
    _, groups = template
    for group in groups:
        for table, job_of_row, offset, _dtype in group:
            table[:, 1] = base[job_of_row] + offset
    like = {dtype: np.empty(0, dtype) for dtype in units}
    drive = {dtype: unit["drive"] for dtype, unit in units.items()}
    search = {d: u["search_rows"] for d, u in searches.items()} if check is not None else None
    bad: list[int] = []

    def update(k: int) -> None:
        for table, job_of_row, _offset, dtype in groups[k]:
            coefficients = jobs[job_of_row[0]][1][0]  # one dtype per table: its jobs share them
            drive[dtype](table, like[dtype], coefficients)

    def find(k: int) -> bool:
        clean = True
        for table, job_of_row, _offset, dtype in groups[k]:  # every dtype's table: the first
            row = search[dtype](table, like[dtype])  # bad leaf may be in the second
            if row >= 0:
                bad.append(int(job_of_row[row]))
                clean = False
        return clean

    _parallel_for(list(range(len(groups))), update, None if search is None else find)
    return min(bad) if bad else -1


def _address_tables(
    jobs: Sequence[tuple[tuple[np.ndarray, ...], tuple[Any, ...]]], plan: list[list[tuple[int, int, int]]]
) -> list[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.dtype]]]:
    """Per group of the plan, one table per dtype: a row per piece, ``(address, length)`` of
    each of its arrays (the gradient's address left for each call), with the job of each row,
    the byte offset of the piece in the gradient, and the dtype."""
    n_arrays = len(jobs[0][0])
    bases = [[a.ctypes.data for a in arrays] for arrays, _ in jobs]
    dtypes = list(dict.fromkeys(arrays[0].dtype for arrays, _ in jobs))
    groups = []
    for pieces in plan:
        tables = []
        for dtype in dtypes:
            rows = [(job, lo, hi) for job, lo, hi in pieces if jobs[job][0][0].dtype == dtype]
            if not rows:
                continue
            table = np.zeros((len(rows), 2 * n_arrays), dtype=np.intp)
            job_of_row = np.array([job for job, _, _ in rows], dtype=np.intp)
            offset = np.zeros(len(rows), dtype=np.intp)
            for r, (job, lo, hi) in enumerate(rows):
                arrays = jobs[job][0]
                for k, a in enumerate(arrays):
                    if a.size:  # an absent buffer (empty) keeps length 0 and is never indexed
                        table[r, k] = bases[job][k] + lo * a.itemsize
                        table[r, n_arrays + k] = hi - lo
                offset[r] = lo * arrays[1].itemsize
            tables.append((table, job_of_row, offset, dtype))
        groups.append(tables)
    return groups


def layout(state: Any, p_leaves: Sequence[np.ndarray], names: Sequence[str]) -> Layout:
    """The state's cached :class:`Layout` for a kernel taking buffers ``names`` (rebuilt if the
    parameter arrays or buffer lists are not the ones it was made for)."""
    key = tuple(names)
    found = state._layouts.get(key)
    if found is None or not found.matches(p_leaves, state.buffers, names):
        found = state._layouts[key] = Layout(p_leaves, state.buffers, names)
    return found


# -- non-finite gradients ---------------------------------------------------------------------------
def _nonfinite_search():
    def any_nonfinite(g):
        # x - x is 0 for a finite x and NaN for inf or NaN, and a sum of zeros with any NaN is
        # NaN in whatever order it is added: so the sum may be reassociated (vectorized, 2.6x
        # the speed of a counting loop) without changing the answer. x - x -> 0 is not folded:
        # that needs the no-NaN flag, which is not given.
        if g.size == 0:
            return False
        s = g[0] - g[0]
        for i in range(1, g.size):
            s += g[i] - g[i]
        return s != 0

    return any_nonfinite


_nonfinite_search.fastmath = {"reassoc"}  # type: ignore[attr-defined]


def first_nonfinite(grads: Sequence[np.ndarray], which: Sequence[int] | None = None) -> int:
    """Index of the first gradient leaf (among ``which``) holding a NaN or infinity, or -1.

    The NumPy way, for leaves the kernels do not take: sum the leaf (no temporary) and look
    closer only when the sum is not finite, which a large finite leaf can also cause.
    """
    for i in range(len(grads)) if which is None else which:
        g = grads[i]
        if g.dtype.kind != "f":
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.sum(g))
        if not math.isfinite(total) and not bool(np.isfinite(g).all()):
            return i
    return -1


def describe_nonfinite(g: np.ndarray) -> str:
    """``nan at index (2, 1)`` (the first non-finite entry of ``g``), for error messages."""
    flat = int(np.flatnonzero(~np.isfinite(g))[0])
    where = np.unravel_index(flat, g.shape) if g.ndim else ()
    index = tuple(int(k) for k in where)
    text = repr(float(g.reshape(-1)[flat]))
    if len(index) == 1:
        return f"{text} at index {index[0]}"
    return f"{text} at index {index}" if index else text
