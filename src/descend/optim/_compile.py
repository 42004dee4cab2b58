"""Compiling the fused kernels: each build is a generated module whose file name is its text's hash.

numba caches a compiled function on disk keyed by its qualified name, its signature, its
bytecode and its source file's stamp. Nothing else a function depends on is in that key: not
the values of the globals it reads (numba compiles them in as constants), not the code of the
functions it calls, not the constants in its own bytecode. A kernel made by a factory (flags
closed over) with helpers injected as globals therefore shares its key with every other
setting of the same factory, and a cache written by one process could hand another the code of
another rule setting, or code linked against a callee that is not there (a segfault).
Concurrent first compiles of *different* signatures of one function can also cross its index
and its data files (numba numbers data files without a lock).

So here nothing that varies is hidden from the key. Every build (one rule's kernel for one
setting of its flags, one dtype and one count of arrays and coefficients; or the non-finite
search for one dtype) is the text of a small module written out in full: the flags as
literal constants, the helpers' source, the kernel's source, the exact signature. The module
lives in a file named by the SHA-256 of that text, under :func:`cache_dir`, so a different
text (another rule, flag, dtype, arity, helper edit, or descend/numba/numpy/Python version) is
a different file with its own numba cache beside it. Each function is compiled for exactly
one signature and then closed to other types, so each cache index holds one entry. descend
compiles the text it generated, never what the file holds (a file that differs is
rewritten). numba's own cache files (pickles and machine code) are loaded as they are, so the
directory must be this user's alone: one that others can write to is not used.

A cache entry that cannot be read (a truncated or foreign file) is dropped and the function
compiled again; where no directory is writable, kernels are compiled in each process.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import platform
import sys
import tempfile
import textwrap
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import _blocks

__all__ = ["CACHE_ENV", "Unit", "cache_dir", "dispatchers", "kernel_unit", "search_unit"]

#: environment variable naming the directory of compiled kernels (default: ``descend/kernels``
#: under ``$XDG_CACHE_HOME`` or ``~/.cache``; an empty value turns the disk cache off).
CACHE_ENV = "DESCEND_CACHE_DIR"

_log = logging.getLogger(__name__)
_units: dict[tuple[Any, ...], Unit] = {}
_lock = threading.RLock()
_root: list[Path | None] = []  # [the cache directory, or None when none is usable], once found
#: every dispatcher compiled in this process (tests read their cache statistics)
_dispatchers: list[Any] = []


def dispatchers() -> list[Any]:
    """The numba dispatchers compiled (or loaded from the cache) in this process."""
    return list(_dispatchers)


def cache_dir() -> Path | None:
    """Where generated kernel modules and numba's caches of them live, or None (no disk cache:
    ``DESCEND_CACHE_DIR`` set empty, or no writable directory)."""
    if not _root:
        _root.append(_find_root())
        if _root[0] is not None:
            _clear_stale_temporaries(_root[0])
    return _root[0]


def _find_root() -> Path | None:
    setting = os.environ.get(CACHE_ENV)
    if setting is not None:
        candidates = [Path(setting)] if setting else []
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        candidates = [Path(base) / "descend" / "kernels"]
    for path in candidates:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(path):
                continue
            probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
            probe.close()
        except OSError:
            continue
        return path
    return None


def _private(path: Path) -> bool:
    """Whether only this user can write into ``path``: numba loads its cache files (pickles and
    machine code) as they are, so a directory someone else can write to would let them run
    code in this process. Such a directory is not used (kernels compile in each process)."""
    if not hasattr(os, "getuid"):
        return True
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        _log.info("not caching kernels in %s: it is not this user's alone", path)
        return False
    return True


def _versions() -> str:
    import llvmlite
    import numba

    from .. import __version__

    return (
        f"descend {__version__} | numba {numba.__version__} | llvmlite {llvmlite.__version__} | "
        f"numpy {np.__version__} | python {platform.python_version()} {sys.implementation.cache_tag}"
    )


# -- the text of a module --------------------------------------------------------------------------
_PREAMBLE = """\
import math

import numba
import numpy as np
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic

FLOAT = numba.{dtype}
ARRAY = FLOAT[::1]
GRAD = types.Array(FLOAT, 1, "C", readonly=True)
TABLE = numba.intp[:, ::1]
OPTIONS = dict(nogil=True, error_model="numpy")


@intrinsic
def voidptr(typingctx, addr):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.intp), codegen


@numba.njit(**OPTIONS)
def piece(table, row, k, like):
    # array k of the table's row: its address and length, as a 1-D array of like's dtype
    return carray(voidptr(table[row, k]), table[row, table.shape[1] // 2 + k], like.dtype)
"""


def _source_of(fn: Callable[..., Any]) -> str:
    return textwrap.dedent(inspect.getsource(fn))


def _literal(owner: str, name: str, value: Any) -> str:
    if type(value) in (bool, int, float):
        return repr(value)
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return repr(value.item())
    raise TypeError(f"{owner}: a kernel may close over bools and numbers only, {name} is {value!r}")


def _helpers_text() -> str:
    # the scalar building blocks, compiled without a cache of their own: they are linked into
    # each cached kernel that calls them
    parts = [f"@numba.njit(**OPTIONS)\n{_source_of(f)}" for f in _blocks.KERNEL_HELPERS.values()]
    return "\n\n".join(parts)


def _module_text(title: str, dtype: np.dtype, body: str) -> str:
    header = (
        f"# descend fused kernels: {title}\n"
        f"# {_versions()}\n"
        "# Generated. The file name is the SHA-256 of this text; descend compiles the text it\n"
        "# generates, not this file, and rewrites a file that differs.\n"
    )
    return header + _PREAMBLE.format(dtype=dtype.name) + "\n\n" + body.strip() + "\n"


def _driver_text(n_arrays: int) -> str:
    pieces = ", ".join(f"piece(table, r, {k}, like)" for k in range(n_arrays))
    return (
        "def drive(table, like, c):\n"
        "    # the kernel over every row of an address table (one call for many arrays)\n"
        "    for r in range(table.shape[0]):\n"
        f"        kernel({pieces}, c)\n"
    )


def _signatures_text(**functions: tuple[str, tuple[str, ...]]) -> str:
    # each function's one signature, and the functions it calls
    rows = "".join(f"    {name!r}: {sig},\n" for name, (sig, _) in functions.items())
    needs = "".join(f"    {name!r}: {calls!r},\n" for name, (_, calls) in functions.items())
    return f"SIGNATURES = {{\n{rows}}}\n__needs__ = {{\n{needs}}}"


# -- compiled units --------------------------------------------------------------------------------
class Unit:
    """The functions of one generated module, each compiled on first use for its one signature.

    The module's ``SIGNATURES`` maps each function's name to its numba signature, and
    ``__needs__`` to the functions it calls (compiled first: a caller links their builds).
    """

    def __init__(self, text: str, fastmath: dict[str, Any]):
        self.text = text
        self.sha = hashlib.sha256(text.encode()).hexdigest()
        self.fastmath = fastmath
        self.path = _materialize(self.sha, text)
        filename = str(self.path) if self.path is not None else f"<descend kernels {self.sha[:16]}>"
        # a module numba can find by name (it looks the module up when it loads a cached build)
        module = types.ModuleType(f"_descend_kernels_{self.sha[:32]}")
        module.__file__ = filename
        exec(compile(text, filename, "exec"), module.__dict__)  # our own generated text, nothing else
        sys.modules[module.__name__] = module
        self.namespace: dict[str, Any] = module.__dict__
        self._compiled: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        found = self._compiled.get(name)
        if found is None:
            with _lock:
                found = self._compiled.get(name)
                if found is None:
                    for callee in self.namespace["__needs__"][name]:
                        self[callee]  # compiled first: a caller links its callees' builds
                    found = self._compiled[name] = self._compile(name)
        return found

    def _compile(self, name: str) -> Any:
        import numba

        ns = self.namespace
        raw = ns[name]
        signature = ns["SIGNATURES"][name]
        options = {"nogil": True, "error_model": "numpy", "fastmath": self.fastmath.get(name, False)}
        dispatcher = None
        if self.path is not None:
            try:
                dispatcher = _compile_cached(raw, signature, options)
            except Exception as exc:  # no cache locator for the directory, or a compile error
                _log.info("compiling %s:%s without a disk cache (%r)", self.path, name, exc)
        if dispatcher is None:
            dispatcher = numba.njit(cache=False, **options)(raw)
            dispatcher.compile(signature)
        dispatcher.disable_compile()  # one signature, one cache entry: other types are an error
        ns[name] = dispatcher  # callers compiled after this link this build
        _dispatchers.append(dispatcher)
        return dispatcher


def _compile_cached(raw: Callable[..., Any], signature: Any, options: dict[str, Any]) -> Any:
    import numba

    dispatcher = numba.njit(cache=True, **options)(raw)
    try:
        dispatcher.compile(signature)
    except Exception as exc:
        # an entry numba could not read back (truncated, or written by something else): drop
        # this function's cache index and compile again
        _log.info("dropped an unreadable numba cache entry for %s (%r)", raw.__qualname__, exc)
        dispatcher = numba.njit(cache=True, **options)(raw)
        dispatcher._cache.flush()
        dispatcher.compile(signature)
    return dispatcher


def _materialize(sha: str, text: str) -> Path | None:
    """The file ``k_<sha>.py`` in the cache directory, holding ``text`` (written if missing or
    different), or None when there is no usable cache directory."""
    root = cache_dir()
    if root is None:
        return None
    path = root / f"k_{sha[:32]}.py"
    data = text.encode()
    # numba before 0.61 stamps a cache with the source's (mtime, size): a time that follows from
    # the text keeps an index copied from another file from ever matching this one
    stamp = (1_500_000_000 * 10**9) + int(sha[:13], 16)
    try:
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        if current != data:
            fd, tmp = tempfile.mkstemp(dir=root, prefix=f".k_{sha[:16]}-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(tmp, 0o644)
                os.utime(tmp, ns=(stamp, stamp))  # stamped before it appears under its name
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        elif path.stat().st_mtime_ns != stamp:
            os.utime(path, ns=(stamp, stamp))
    except OSError:
        return None
    return path


def _get(key: tuple[Any, ...], make: Callable[[], Unit]) -> Unit:
    unit = _units.get(key)
    if unit is None:
        with _lock:
            unit = _units.get(key)
            if unit is None:
                unit = _units[key] = make()
    return unit


def kernel_unit(
    factory: Callable[..., Any], flags: tuple[Any, ...], dtype: np.dtype, n_arrays: int, n_coefficients: int
) -> Unit:
    """The unit holding ``kernel`` (``factory(*flags)`` for arrays of ``dtype``: ``n_arrays``
    arrays then a tuple of ``n_coefficients`` numbers) and ``drive`` (the kernel over the rows
    of an address table)."""
    dtype = np.dtype(dtype)
    key = ("kernel", factory, tuple(flags), dtype, n_arrays, n_coefficients)
    return _get(key, lambda: _make_kernel_unit(factory, tuple(flags), dtype, n_arrays, n_coefficients))


def _make_kernel_unit(
    factory: Callable[..., Any], flags: tuple[Any, ...], dtype: np.dtype, n_arrays: int, n_coefficients: int
) -> Unit:
    kernel = factory(*flags)
    owner = getattr(factory, "__qualname__", repr(factory))
    cells = kernel.__closure__ or ()
    constants = "\n".join(
        f"{name} = {_literal(owner, name, cell.cell_contents)}"
        for name, cell in zip(kernel.__code__.co_freevars, cells, strict=True)
    )
    source = _source_of(kernel)
    if kernel.__name__ != "kernel":
        source = source.replace(f"def {kernel.__name__}(", "def kernel(", 1)
    setting = ", ".join(
        f"{n}={v.cell_contents!r}" for n, v in zip(kernel.__code__.co_freevars, cells, strict=True)
    )
    title = f"{owner}({setting}) on {dtype.name}, {n_arrays} arrays, {n_coefficients} coefficients"
    arrays = ["ARRAY", "GRAD", *["ARRAY"] * (n_arrays - 2)]
    coefficients = f"types.UniTuple(FLOAT, {n_coefficients})"
    body = "\n\n\n".join(
        [
            constants,
            _helpers_text(),
            source,
            _driver_text(n_arrays),
            _signatures_text(
                kernel=(f"numba.void({', '.join(arrays)}, {coefficients})", ()),
                drive=(f"numba.void(TABLE, ARRAY, {coefficients})", ("kernel",)),
            ),
        ]
    )
    fastmath = getattr(factory, "fastmath", False)
    return Unit(_module_text(title, dtype, body), {"kernel": fastmath})


def search_unit(factory: Callable[[], Callable[..., Any]], dtype: np.dtype) -> Unit:
    """The unit holding ``search`` (``factory()``: True if a 1-D array of ``dtype`` holds a NaN
    or infinity), ``search_rows`` (the first row of an address table whose gradient does) and
    ``address`` (an array's data address)."""
    dtype = np.dtype(dtype)
    return _get(("search", factory, dtype), lambda: _make_search_unit(factory, dtype))


def _make_search_unit(factory: Callable[[], Callable[..., Any]], dtype: np.dtype) -> Unit:
    search = factory()
    source = _source_of(search).replace(f"def {search.__name__}(", "def search(", 1)
    body = "\n\n\n".join(
        [
            source,
            "def search_rows(table, like):\n"
            "    # the first row whose gradient (array 1) holds a NaN or infinity, or -1\n"
            "    for r in range(table.shape[0]):\n"
            "        if search(piece(table, r, 1, like)):\n"
            "            return r\n"
            "    return -1",
            "def address(a):\n    return a.ctypes.data",
            _signatures_text(
                search=("numba.boolean(GRAD)", ()),
                search_rows=("numba.intp(TABLE, ARRAY)", ("search",)),
                address=("numba.intp(GRAD)", ()),
            ),
        ]
    )
    title = f"{getattr(factory, '__qualname__', factory)} on {dtype.name}"
    fastmath = {"search": getattr(factory, "fastmath", False)}
    return Unit(_module_text(title, dtype, body), fastmath)


def _clear_stale_temporaries(root: Path, max_age_s: float = 3600.0) -> None:
    """Remove temporary files that a killed process left in the cache directory (ours, and
    numba's ``*.tmp.<id>`` files beside its index and data files)."""
    import time

    now = time.time()
    for pattern in (".k_*.tmp", "__pycache__/*.tmp.*", ".probe-*"):
        for path in root.glob(pattern):
            try:
                if now - path.stat().st_mtime > max_age_s:
                    path.unlink()
            except OSError:
                pass
