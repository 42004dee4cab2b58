"""Run benchmark sections: ``python -m benchmarks`` (all), ``python -m benchmarks optim data``
(some), ``python -m benchmarks --list``; arguments after ``--`` go to every script run."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sections() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    known = sections()
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument(
        "names", nargs="*", metavar="NAME", help=f"sections to run (default all: {', '.join(known)})"
    )
    ap.add_argument("--list", action="store_true", help="list the sections and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name, path in known.items():
            print(f"{name:10} {path.relative_to(HERE.parent)}")
        return 0
    unknown = [n for n in args.names if n not in known]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(known)}")
    failed = []
    for name in args.names or list(known):
        print(
            f"== {name}: {known[name].relative_to(HERE.parent)} {' '.join(extra)}",
            file=sys.stderr,
            flush=True,
        )
        # one process per section: each starts with a clean heap and its own imports
        if subprocess.run([sys.executable, str(known[name]), *extra]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
