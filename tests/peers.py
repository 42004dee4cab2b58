"""The reference implementations descend's rules are compared with (the ``peers`` extra).

Outside CI a missing peer skips its parity tests (``pip install -e '.[peers]'`` brings them);
under CI (``CI=true``) it fails them, so that a green CI always means the comparisons ran.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def need(module: str) -> ModuleType:
    """Import ``module`` for a parity test file: skip the file without it, or fail under CI."""
    if os.environ.get("CI", "").lower() == "true":
        try:
            return importlib.import_module(module)
        except ImportError as exc:  # pragma: no cover - CI installs the peers
            raise ImportError(
                f"{module} is needed by the parity tests under CI: .ci/run installs the 'peers' "
                f"extra (pip install -e '.[peers]'); {exc}"
            ) from exc
    return pytest.importorskip(module, reason=f"{module} is a peer (pip install -e '.[peers]')")
