"""descend.sklearn vs SGDClassifier / SGDRegressor / MLPClassifier: score and fit time, defaults and tuned.

Run: ``python -m benchmarks sklearn`` (or ``python benchmarks/bench_sklearn.py [--rows N]
[--rounds R] [--small breast_cancer,diabetes,digits] [--quick]``). Writes the ``sklearn``
section of ``docs/benchmarks.md`` and prints it.

Every estimator runs in a ``StandardScaler`` pipeline with ``random_state=0``. Scores: on the
small data sets 5-fold CV (no shuffling), "tuned" being the best mean CV score of a small grid
(the same optimistic protocol for every estimator); on the large synthetic sets the score on a
25% hold-out, "tuned" choosing from its grid on one validation split of the other 75%. Times:
one fit (the whole small data set; the 75% of a large one), the median of ``--rounds`` samples
with every contender of a data set alternating within each round.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DOC, alternate, machine, median, spread, versions, write_section

# isort: split
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier, SGDRegressor
from sklearn.model_selection import GridSearchCV, ShuffleSplit, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from descend.sklearn import DescendClassifier, DescendRegressor  # after _common: this checkout's src

NAME = "sklearn"

LINEAR_GRID = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "l2": [0.0, 1e-4, 1e-3, 1e-2]}
SGD_CLF_GRID = [
    {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "learning_rate": ["optimal"]},
    {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "learning_rate": ["adaptive"], "eta0": [0.01]},
]
SGD_REG_GRID = {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "learning_rate": ["invscaling", "adaptive"]}
MLP_GRID = {"learning_rate_init": [1e-3, 3e-3, 1e-2], "alpha": [1e-4, 1e-2]}
DESCEND_MLP_GRID = {"lr": [1e-3, 3e-3, 1e-2], "l2": [0.0, 1e-4, 1e-3]}
LARGE_GRID = {"batch_size": [128, 1024], "lr": [3e-3, 3e-2]}

#: name -> (title, metric, loader, [(sklearn estimator, grid), (descend estimator, grid), reference])
SMALL = {
    "breast_cancer": (
        "breast cancer",
        "accuracy",
        load_breast_cancer,
        [
            (SGDClassifier(loss="log_loss", random_state=0), SGD_CLF_GRID),
            (DescendClassifier(random_state=0), LINEAR_GRID),
        ],
        LogisticRegression(),
    ),
    "diabetes": (
        "diabetes",
        "R²",
        load_diabetes,
        [(SGDRegressor(random_state=0), SGD_REG_GRID), (DescendRegressor(random_state=0), LINEAR_GRID)],
        Ridge(),
    ),
    "digits": (
        "digits, MLP (100,)",
        "accuracy",
        load_digits,
        [
            (MLPClassifier(random_state=0), MLP_GRID),
            (DescendClassifier(hidden_layer_sizes=(100,), random_state=0), DESCEND_MLP_GRID),
        ],
        None,
    ),
}


def _first_only(grid: Any) -> Any:
    """``--quick``: the first value of every parameter (a grid of one or two configs)."""
    if isinstance(grid, list):
        return [_first_only(g) for g in grid]
    return {k: v[:1] for k, v in grid.items()}


def _prefixed(grid: Any, est: Any) -> Any:
    name = type(est).__name__.lower()
    if isinstance(grid, list):
        return [_prefixed(g, est) for g in grid]
    return {f"{name}__{k}": v for k, v in grid.items()}


def _n_configs(grid: Any) -> int:
    if isinstance(grid, list):
        return sum(_n_configs(g) for g in grid)
    n = 1
    for v in grid.values():
        n *= len(v)
    return n


def _short(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('__', 1)[1]}={v}" for k, v in sorted(params.items()))


def _fit(pipe: Pipeline, X: Any, y: Any) -> Any:
    return lambda: clone(pipe).fit(X, y)


class _Row(dict):
    """One contender of a data set: its pipeline, score and, once timed, its fit time."""


def _timed(rows: list[_Row], X: Any, y: Any, rounds: int) -> None:
    """Fit time of every row's pipeline, all rows alternating within each round."""
    samples = alternate({str(i): _fit(r["pipe"], X, y) for i, r in enumerate(rows)}, rounds, min_time=0.0)
    for i, r in enumerate(rows):
        r["time"], r["noise"] = median(samples[str(i)]), spread(samples[str(i)])


def small_rows(names: list[str], rounds: int, quick: bool) -> list[tuple[str, list[_Row]]]:
    out = []
    for key in names:
        title, metric, load, entries, reference = SMALL[key]
        X, y = load(return_X_y=True)
        rows: list[_Row] = []
        for est, grid in entries:
            grid = _first_only(grid) if quick else grid
            pipe = make_pipeline(StandardScaler(), est)
            score = cross_val_score(pipe, X, y, cv=5).mean()
            rows.append(_Row(est=type(est).__name__, setting="defaults", score=score, pipe=pipe, best=""))
            search = GridSearchCV(pipe, _prefixed(grid, est), cv=5, refit=False).fit(X, y)
            best = search.cv_results_["params"][search.best_index_]
            rows.append(
                _Row(
                    est=type(est).__name__,
                    setting=f"tuned ({_n_configs(grid)} configs)",
                    score=search.best_score_,
                    pipe=clone(pipe).set_params(**best),
                    best=_short(best),
                )
            )
        if reference is not None:
            pipe = make_pipeline(StandardScaler(), reference)
            score = cross_val_score(pipe, X, y, cv=5).mean()
            rows.append(
                _Row(est=type(reference).__name__, setting="reference", score=score, pipe=pipe, best="")
            )
        _timed(rows, X, y, rounds)
        out.append((f"{title} | {metric}", rows))
        print(f"measured {title}", file=sys.stderr, flush=True)
    return out


def large_rows(n_rows: int, rounds: int, quick: bool) -> list[tuple[str, list[_Row]]]:
    sets = [
        (
            "classification | accuracy",
            make_classification(n_samples=n_rows, n_features=50, n_informative=20, random_state=0),
            [
                (SGDClassifier(loss="log_loss", random_state=0), SGD_CLF_GRID),
                (DescendClassifier(random_state=0), LARGE_GRID),
            ],
        ),
        (
            "regression | R²",
            make_regression(n_samples=n_rows, n_features=50, n_informative=20, noise=10.0, random_state=0),
            [(SGDRegressor(random_state=0), SGD_REG_GRID), (DescendRegressor(random_state=0), LARGE_GRID)],
        ),
    ]
    out = []
    for title, (X, y), entries in sets:
        Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
        rows: list[_Row] = []
        for est, grid in entries:
            grid = _first_only(grid) if quick else grid
            pipe = make_pipeline(StandardScaler(), est).fit(Xtr, ytr)
            rows.append(
                _Row(
                    est=type(est).__name__,
                    setting="defaults",
                    score=pipe.score(Xte, yte),
                    pipe=pipe,
                    epochs=pipe[-1].n_iter_,
                    best="",
                )
            )
            split = ShuffleSplit(n_splits=1, test_size=0.2, random_state=0)
            search = GridSearchCV(clone(pipe), _prefixed(grid, est), cv=split).fit(Xtr, ytr)
            rows.append(
                _Row(
                    est=type(est).__name__,
                    setting=f"tuned ({_n_configs(grid)} configs)",
                    score=search.score(Xte, yte),
                    pipe=search.best_estimator_,
                    epochs=search.best_estimator_[-1].n_iter_,
                    best=_short(search.best_params_),
                )
            )
        _timed(rows, Xtr, ytr, rounds)
        out.append((title, rows))
        print(f"measured {title}", file=sys.stderr, flush=True)
    return out


def _ratio(rows: list[_Row], r: _Row) -> str:
    """descend's time over its scikit-learn peer's (same setting); blank for sklearn's rows."""
    if not r["est"].startswith("Descend"):
        return ""
    kind = r["setting"].split()[0]
    peer = next(p for p in rows if not p["est"].startswith("Descend") and p["setting"].split()[0] == kind)
    return f"{r['time'] / peer['time']:.2f}"


def _table(groups: list[tuple[str, list[_Row]]], score_name: str, epochs: bool) -> list[str]:
    head = f"| data | metric | estimator | setting | {score_name} | fit time (s) | time / sklearn's |"
    head += " epochs |" if epochs else ""
    lines = [
        head + " best parameters |",
        "|---|---|---|---|---:|---:|---:|" + ("---:|" if epochs else "") + "---|",
    ]
    for title, rows in groups:
        for r in rows:
            cells = [title, r["est"], r["setting"], f"{r['score']:.4f}", f"{r['time']:.3f}", _ratio(rows, r)]
            if epochs:
                cells.append(str(r["epochs"]))
            lines.append("| " + " | ".join([*cells, r["best"]]) + " |")
    return lines


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows", type=int, default=200_000, help="rows of the large synthetic sets (default 200000)"
    )
    ap.add_argument("--rounds", type=int, default=5, help="timing samples per contender (default 5)")
    ap.add_argument(
        "--small", default=",".join(SMALL), help=f"small data sets to run (default {','.join(SMALL)})"
    )
    ap.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads for every contender (default 1)"
    )
    ap.add_argument("--quick", action="store_true", help="grids of the first value only (smoke runs)")
    ap.add_argument("--doc", type=Path, default=DOC, help="Markdown file whose sklearn section is rewritten")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter reached: part of the result
    names = [n for n in args.small.split(",") if n]
    unknown = sorted(set(names) - set(SMALL))
    if unknown:
        ap.error(f"unknown small data set(s) {unknown}; known: {list(SMALL)}")
    load_before = machine()
    # one BLAS thread for every contender: on a few shared cores, threaded BLAS calls in tight
    # training loops oversubscribe them and time the scheduler instead of the estimators
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        small = small_rows(names, args.rounds, args.quick)
        large = large_rows(args.rows, args.rounds, args.quick)
    noise = max(r["noise"] for _, rows in small + large for r in rows)
    command = "python -m benchmarks sklearn" + (f" -- {' '.join(argv)}" if argv else "")
    lines = [
        "## scikit-learn estimators",
        "",
        f"Command: `{command}`. Machine: {load_before} (at the start; at the end: "
        f"{machine().rsplit('load average ', 1)[1]}). {versions('numpy', 'sklearn', 'numba')}. "
        f"BLAS limited to {args.blas_threads} thread(s) for every contender (threadpoolctl).",
        "",
        "`descend.sklearn.DescendClassifier` / `DescendRegressor` (Adam, defaults unless tuned) against "
        "`SGDClassifier(loss='log_loss')`, `SGDRegressor` and `MLPClassifier`, each in a "
        "`StandardScaler` pipeline with `random_state=0`. *fit time* is one fit of the pipeline "
        f"(small sets: all rows; large: the 75% training rows), the median of {args.rounds} rounds "
        "in which a data set's contenders alternate; *time / sklearn's* divides descend's by its "
        f"scikit-learn peer's in the same setting. Largest relative noise (half-IQR / median): {noise:.0%}.",
        "",
        "Small data sets: mean 5-fold CV score (no shuffling). *tuned* is the best mean CV score over "
        "the grid (the same optimistic protocol for every estimator); reference rows are "
        "scikit-learn's exact solvers.",
        "",
        *_table(small, "CV score", epochs=False),
        "",
        f"Large synthetic data: {args.rows:,} rows × 50 features (`make_classification` / "
        "`make_regression`, 20 informative, seed 0); score on a 25% hold-out; *tuned* chose its "
        "parameters on a validation split of the training rows, then refit on all of them; *epochs* "
        "run before `tol` stopped training.",
        "",
        *_table(large, "test score", epochs=True),
        "",
        f"Grids — descend linear: {LINEAR_GRID}; descend MLP: {DESCEND_MLP_GRID}; descend on the large "
        f"sets: {LARGE_GRID}; SGDClassifier: {SGD_CLF_GRID}; SGDRegressor: {SGD_REG_GRID}; "
        f"MLPClassifier: {MLP_GRID}"
        + (" (`--quick`: first values only)" if args.quick else "")
        + ". descend's `l2` scales the penalty on the mean loss, like SGD's `alpha`; "
        "MLPClassifier's `alpha` is divided by the number of rows.",
    ]
    section = "\n".join(lines)
    write_section(NAME, section, args.doc)
    print(section)
    return section


if __name__ == "__main__":
    main(sys.argv[1:])
