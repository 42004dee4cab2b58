"""What the claims tests share: docs/claims.py loaded as the script loads it, each claim measured
small once, and a claim's Reproduce block run command by command (small).

docs/claims.py is a script, not a package module: it is loaded from its file under a name of the
test's own, and the claim files it imports (claims_more, claims_timing) are dropped from
``sys.modules`` afterwards so the next test file loads them afresh.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from descend.cli import main

CLAIMS_PY = Path(__file__).resolve().parents[1] / "docs" / "claims.py"
#: the modules docs/claims.py imports next to itself
CLAIM_FILES = ("claims", "claims_more", "claims_timing")


@contextlib.contextmanager
def loaded(name: str) -> Iterator[Any]:
    """docs/claims.py as module ``name`` (with every claim file it loads into its CLAIMS)."""
    spec = importlib.util.spec_from_file_location(name, CLAIMS_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        for key in (name, *CLAIM_FILES):
            sys.modules.pop(key, None)


def measured_once(claims: Any, small: dict[str, dict[str, Any]]) -> Callable[[str], Any]:
    """``get(key)``: claim ``key`` measured at its ``small`` sizes, once for the tests that read it."""
    cache: dict[str, Any] = {}

    def get(key: str) -> Any:
        if key not in cache:
            cache[key] = claims.CLAIMS[key][0](**small[key])
        return cache[key]

    return get


def run_reproduce(
    claims: Any,
    key: str,
    measured: Callable[[str], Any],
    smaller: dict[str, list[str]],
    *,
    tmp_path: Path,
    monkeypatch: Any,
    capsys: Any,
    check: Callable[[list[str], str], None] | None = None,
    script: bool = True,
) -> list[str]:
    """Run every command of claim ``key``'s Reproduce block as printed, small: the claims script
    on the small measurement (its pictures into ``tmp_path``), each ``descend`` command with
    ``smaller[command]`` appended (a later flag overrides an earlier one), its output handed to
    ``check``; ``script=False`` leaves the script's own command to test_claims. Returns the
    commands run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    _, draw, section = claims.CLAIMS[key]
    commands = section(measured(key)).commands
    assert commands[0] == f"{claims.SCRIPT} --only {key}", commands[0]
    ran = []
    for command in commands:
        if command.startswith("#"):
            continue
        if command.startswith(claims.SCRIPT):
            if not script:
                continue
            argv = shlex.split(command)[2:]
            monkeypatch.setitem(claims.CLAIMS, key, (functools.partial(measured, key), draw, section))
            monkeypatch.setattr(claims, "PICTURES", tmp_path / "pictures")
            assert claims.main(argv) == 0
            assert [p.name for p in (tmp_path / "pictures").glob("*.png")], "no picture drawn"
            assert section(measured(key)).title in capsys.readouterr().out
        else:
            words = shlex.split(command)
            assert words[0] == "descend", command
            argv = words[1:] + smaller[words[1]]
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 0, (command, out, err)
            assert "Traceback" not in out + err, (command, out, err)
            if check is not None:
                check(argv, out)
        ran.append(command)
    return ran
