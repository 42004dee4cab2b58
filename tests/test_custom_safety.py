"""A custom objective's expression runs no code but arithmetic, and a run folder runs none at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import yaml

from descend.cli import main
from descend.errors import ParameterError
from descend.lab import custom
from descend.lab.custom import (
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING,
    MAX_TREE_DEPTH,
    compile_expression,
    resolve_function,
)
from descend.lab.reload import load_run
from descend.train import central_difference_grad


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current folder: whatever an escape would write lands here, and must not."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# (expression, a fragment the refusal must hold): the known ways out of an eval'd expression
ESCAPES = [
    ("np.__builtins__['__import__']('os').system('touch X')", "not allowed"),
    ("np.__builtins__['__import__']('os')", "a subscript"),
    ("np.__builtins__['exec'](\"import os; os.system('touch X')\")", "a subscript"),
    ("__import__('os').system('touch X')", "attribute access '.system'"),
    ("__import__('os')", "unknown name '__import__'"),
    ("x.__class__.__mro__", "attribute access '.__mro__'"),
    ("x.__class__", "attribute access '.__class__'"),
    ("sin.__globals__", "attribute access '.__globals__'"),
    ("np.sin.__call__(x)", "attribute access '.__call__'"),
    ("np.__dict__['save']('X', x)", "a subscript"),
    ("getattr(np, 'save')('X', x)", "not allowed"),
    ("getattr(x, '__class__')", "unknown name 'getattr'"),
    ("().__class__.__base__.__subclasses__()", "not allowed"),
    ("().__class__", "attribute access '.__class__'"),
    ("'{0.__class__}'.format(x)", "attribute access '.format'"),
    ("'X'", "a string literal"),
    ("b'X'", "a string literal"),
    ("f'{x.__class__}'", "an f-string"),
    ("f'{x}'", "an f-string"),
    ("(lambda: 0)()", "a lambda"),
    ("(lambda x: x)(x)", "a lambda"),
    ("[t for t in (x, y)][0]", "not allowed"),
    ("sum(t for t in (x, y))", "unknown name 'sum'"),
    ("maximum(*[t for t in (x, y)])", "a starred argument"),
    ("{t: t for t in (x, y)}", "a comprehension"),
    ("(z := x) + z", "assignment (':=')"),
    ("maximum(x, y, out=x)", "a keyword argument ('out=')"),
    ("sin(**{'x': x})", "a '**' argument"),
    ("sin(*(x,))", "a starred argument"),
    ("np.load('X.npy', allow_pickle=True)", "attribute access '.load'"),
    ("np.save('X', x)", "attribute access '.save'"),
    ("np.savetxt('X', x)", "attribute access '.savetxt'"),
    ("np.lib.npyio.save('X', x)", "attribute access '.save'"),
    ("numpy.save('X', x)", "attribute access '.save'"),
    ("open('X', 'w')", "unknown name 'open'"),
    ("exec('import os')", "unknown name 'exec'"),
    ("eval('1')", "unknown name 'eval'"),
    ("globals()", "unknown name 'globals'"),
    ("__builtins__ + x", "unknown name '__builtins__'"),
    ("np + x", "unknown name 'np'"),
    ("x.real", "attribute access '.real'"),
    ("x[0]", "a subscript"),
    ("sin(x)(y)", "a call of anything but a function's name"),
    ("x(y)", "calling 'x'"),
    ("pi(x)", "calling 'pi'"),
    ("x if y else 0", "where(condition, a, b)"),
    ("x and y", "where(condition, a, b)"),
    ("not x", "the operator 'not'"),
    ("~x", "the operator '~'"),
    ("x @ y", "the operator '@'"),
    ("x << 2", "the operator '<<'"),
    ("x in y", "the operator 'in'"),
    ("x is y", "the operator 'is'"),
    ("(x, y)", "a tuple"),
    ("[x, y]", "a list"),
    ("{x}", "a set"),
    ("{1: x}", "a dict"),
    ("1j * x", "the literal 1j"),
    ("True * x", "the literal True"),
    ("... * x", "the literal Ellipsis"),
    ("sin", "is a function: call it"),
    ("np.sin + x", "is a function: call it"),
    ("sin(x, y)", "sin takes 1 argument, got 2"),  # y would be numpy's `out`: written into
    ("where(x)", "where takes 3 arguments, got 1"),
    ("import os", "not a valid expression"),
    ("x; import os", "not a valid expression"),
    ("x\x00", "null bytes"),
]


@pytest.mark.parametrize(("expr", "fragment"), ESCAPES, ids=[e for e, _ in ESCAPES])
def test_escapes_are_refused_naming_what_and_do_nothing(expr, fragment, workdir):
    with pytest.raises(ParameterError) as info:
        resolve_function(expr, start=(1.0, 1.0))
    exc = info.value
    assert (exc.owner, exc.param, exc.value) == ("function", "function", expr)
    assert str(exc).startswith("function: "), str(exc)
    assert fragment in str(exc), str(exc)
    with pytest.raises(ParameterError):
        compile_expression(expr)
    assert list(workdir.iterdir()) == []  # no file written, by touch or np.save


def test_refusals_list_what_is_allowed():
    with pytest.raises(ParameterError) as info:
        compile_expression("np.load('X.npy', allow_pickle=True)")
    text = str(info.value)
    assert "attribute access '.load' is not allowed in an expression" in text
    assert "allowed: numbers, x, y, + - * / // % **" in text
    assert "arctan2" in text and "where" in text and "hypot" in text


def test_a_module_callable_escape_is_still_refused_when_it_spells_a_walrus(workdir):
    # 'z := x' holds a colon and '=': it must reach the expression check, not the spec parser
    with pytest.raises(ParameterError, match="assignment"):
        resolve_function("x + (z := 1)")


# ------------------------------------------------------------------------------ size and time


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("x+" * MAX_EXPRESSION_LENGTH + "x", f"longer than the {MAX_EXPRESSION_LENGTH} characters"),
        ("(" * 100_000, f"longer than the {MAX_EXPRESSION_LENGTH} characters"),
        ("(" * 100_000 + "x" + ")" * 100_000, "longer than"),
        ("(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1), f"at most {MAX_NESTING}"),
        ("[" * 1000, f"at most {MAX_NESTING}"),
        ("sin(" * 60 + "x" + ")" * 60, f"at most {MAX_NESTING}"),
        ("1 + " + "-" * 1500 + "x", f"more than {MAX_TREE_DEPTH} deep"),
        ("x" + "**x" * 300, f"more than {MAX_TREE_DEPTH} deep"),
        ("+".join(["x"] * 400), f"more than {MAX_TREE_DEPTH} deep"),
    ],
    ids=[
        "long",
        "open-brackets",
        "nested-100000",
        "nested-51",
        "list-brackets",
        "calls",
        "unary",
        "pow",
        "sum",
    ],
)
def test_long_and_deep_expressions_are_refused_before_they_cost_anything(expr, fragment):
    t0 = time.perf_counter()
    with pytest.raises(ParameterError) as info:
        resolve_function(expr, start=(1.0, 1.0))
    assert time.perf_counter() - t0 < 2.0
    assert fragment in str(info.value)
    assert len(str(info.value)) < 400  # the text itself is not echoed in full


def test_limits_are_inclusive_and_leave_room_for_real_expressions():
    deep = "(" * MAX_NESTING + "x" + ")" * MAX_NESTING
    assert float(compile_expression(deep)(2.0, 0.0)) == 2.0
    terms = " + ".join(f"{k}*x**{k}" for k in range(40))
    assert float(compile_expression(terms)(1.0, 0.0)) == sum(range(40))


def test_huge_powers_finish_at_once_in_float64():
    """10**10**10 on Python ints would compute a number of ten billion digits; as float64 it is
    inf at once, and the start-point check refuses it. A subprocess bounds the time even if not."""
    code = textwrap.dedent(
        """
        from descend.lab.custom import resolve_function
        from descend.errors import ParameterError
        for expr in ("10**10**10", "x + 10**10**10**10", "(9**9)**(9**9)**9", "2**2**2**2**2**2"):
            try:
                resolve_function(expr, start=(1.0, 1.0))
            except ParameterError as exc:
                print("refused:", exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all("is not finite at the start point" in line for line in lines), lines


def test_huge_integer_literals_are_refused_and_literals_are_float64():
    with pytest.raises(ParameterError, match="too large"):
        compile_expression("x + 1" + "0" * 400)
    value = compile_expression("7 // 2")(0.0, 0.0)
    assert isinstance(value, np.float64) and value == 3.0


# ------------------------------------------------------------------------------ what still works

ARGS = {1: "(x,)", 2: "(x, y)", 3: "(x > y, x, y)"}
#: every allowed name, with arguments and what numpy computes for them (a name added to the
#: evaluator without a row here fails test_every_allowed_name_is_tested)
FUNCTIONS = {
    "sin": ("sin(x)", lambda x, y: np.sin(x)),
    "cos": ("cos(x)", lambda x, y: np.cos(x)),
    "tan": ("tan(x)", lambda x, y: np.tan(x)),
    "arcsin": ("arcsin(x / 3)", lambda x, y: np.arcsin(x / 3)),
    "arccos": ("arccos(x / 3)", lambda x, y: np.arccos(x / 3)),
    "arctan": ("arctan(x)", lambda x, y: np.arctan(x)),
    "sinh": ("sinh(x)", lambda x, y: np.sinh(x)),
    "cosh": ("cosh(x)", lambda x, y: np.cosh(x)),
    "tanh": ("tanh(x)", lambda x, y: np.tanh(x)),
    "arcsinh": ("arcsinh(x)", lambda x, y: np.arcsinh(x)),
    "arccosh": ("arccosh(4 + x)", lambda x, y: np.arccosh(4 + x)),
    "arctanh": ("arctanh(x / 3)", lambda x, y: np.arctanh(x / 3)),
    "exp": ("exp(x)", lambda x, y: np.exp(x)),
    "exp2": ("exp2(x)", lambda x, y: np.exp2(x)),
    "expm1": ("expm1(x)", lambda x, y: np.expm1(x)),
    "log": ("log(4 + x)", lambda x, y: np.log(4 + x)),
    "log2": ("log2(4 + x)", lambda x, y: np.log2(4 + x)),
    "log10": ("log10(4 + x)", lambda x, y: np.log10(4 + x)),
    "log1p": ("log1p(x / 3)", lambda x, y: np.log1p(x / 3)),
    "sqrt": ("sqrt(4 + x)", lambda x, y: np.sqrt(4 + x)),
    "cbrt": ("cbrt(x)", lambda x, y: np.cbrt(x)),
    "square": ("square(x)", lambda x, y: np.square(x)),
    "abs": ("abs(x)", lambda x, y: np.abs(x)),
    "sign": ("sign(x)", lambda x, y: np.sign(x)),
    "floor": ("floor(x)", lambda x, y: np.floor(x)),
    "ceil": ("ceil(x)", lambda x, y: np.ceil(x)),
    "arctan2": ("arctan2(y, x)", lambda x, y: np.arctan2(y, x)),
    "hypot": ("hypot(x, y)", lambda x, y: np.hypot(x, y)),
    "maximum": ("maximum(x, y)", lambda x, y: np.maximum(x, y)),
    "minimum": ("minimum(x, y)", lambda x, y: np.minimum(x, y)),
    "where": ("where(x > y, x, y**2)", lambda x, y: np.where(x > y, x, y**2)),
    "clip": ("clip(x, -1, y)", lambda x, y: np.clip(x, -1, y)),
    "pi": ("pi * x", lambda x, y: np.pi * x),
    "e": ("e * x", lambda x, y: np.e * x),
}

X, Y = np.meshgrid(np.linspace(-2.5, 2.5, 41), np.linspace(-2.0, 2.0, 37))


def test_every_allowed_name_is_tested():
    assert set(FUNCTIONS) == set(custom._NUMPY_NAMES)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_allowed_function_matches_numpy_on_grids_and_points(name):
    expr, reference = FUNCTIONS[name]
    np.testing.assert_array_equal(compile_expression(expr)(X, Y), reference(X, Y))
    np.testing.assert_array_equal(
        compile_expression(expr.replace(name, f"np.{name}", 1))(X, Y), reference(X, Y)
    )
    f = resolve_function(expr, start=(0.5, 0.25))
    for p in [(0.5, 0.25), (-1.5, 1.0), (2.0, -0.5)]:
        assert f(p) == float(reference(np.float64(p[0]), np.float64(p[1])))
    np.testing.assert_array_equal(f.grid(X, Y), np.broadcast_to(reference(X, Y), X.shape))


# expressions from the README, the CLI's help, the tests and docs, with a naive reference each
EXPRESSIONS = [
    ("x**2 + 25*y**2", lambda x, y: x**2 + 25 * y**2),
    ("x**2 + 10*y**2", lambda x, y: x**2 + 10 * y**2),
    ("x**2 + 3*y**2", lambda x, y: x**2 + 3 * y**2),
    ("x**2 + y", lambda x, y: x**2 + y),
    ("(1 - x)**2 + 100*(y - x**2)**2", lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2),
    ("np.sin(x) * np.cos(y) + 0.1*(x**2 + y**2)", lambda x, y: np.sin(x) * np.cos(y) + 0.1 * (x**2 + y**2)),
    (
        "-20*exp(-0.2*sqrt(0.5*(x**2 + y**2))) + e + 20",
        lambda x, y: -20 * np.exp(-0.2 * np.sqrt(0.5 * (x**2 + y**2))) + np.e + 20,
    ),
    ("x // 1.5 + x % 1.5 - y / 3 + +x - -y", lambda x, y: x // 1.5 + x % 1.5 - y / 3 + +x - -y),
    (
        "where(-1 < x <= 1, x**2, abs(x)) + (y >= 0) * y",
        lambda x, y: np.where((-1 < x) & (x <= 1), x**2, np.abs(x)) + (y >= 0) * y,
    ),
    (
        "where(x == y, 1, 0) + where(x != 0, 2, 3)",
        lambda x, y: np.where(x == y, 1, 0) + np.where(x != 0, 2, 3),
    ),
    ("1e-3 * x**4 + .5 * y**2", lambda x, y: 1e-3 * x**4 + 0.5 * y**2),
]


@pytest.mark.parametrize(("expr", "reference"), EXPRESSIONS, ids=[e for e, _ in EXPRESSIONS])
def test_typical_expressions_keep_their_values_and_gradients(expr, reference):
    f = resolve_function(expr, start=(2.0, 1.0))
    assert f.grad_method == "central differences"
    np.testing.assert_array_equal(f.grid(X, Y), np.broadcast_to(reference(X, Y), X.shape))
    for p in [(2.0, 1.0), (0.3, -0.7), (-1.25, 1.75)]:
        p = np.asarray(p)
        assert f(p) == float(reference(p[0], p[1]))
        expected = central_difference_grad(lambda q: float(reference(q[0], q[1])), p)
        np.testing.assert_array_equal(f.grad(p), expected)


def test_the_readme_race_expression_has_its_known_value_and_gradient():
    f = resolve_function("x**2 + 25*y**2", start=(2.0, 1.0))
    assert f([2.0, 1.0]) == 29.0
    np.testing.assert_allclose(f.grad([2.0, 1.0]), [4.0, 50.0], rtol=1e-6)


def test_module_callable_still_imports_when_the_user_names_it(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text("def bowl(p):\n    return float(p[0] ** 2 + 2 * p[1] ** 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    f = resolve_function("mine:bowl", start=(1.0, 1.0))
    assert f([1.0, 2.0]) == 9.0
    monkeypatch.delitem(sys.modules, "mine", raising=False)


def test_module_callable_is_refused_without_importing_when_imports_are_not_allowed(tmp_path, monkeypatch):
    _write_import_trap(tmp_path, monkeypatch)
    with pytest.raises(ParameterError, match="names Python code to import") as info:
        resolve_function("trap:bowl", start=(1.0, 1.0), allow_import=False)
    assert info.value.param == "function"
    assert "trap" not in sys.modules
    assert not (tmp_path / "IMPORTED").exists()
    # built-ins and expressions are still read
    assert resolve_function("quadratic:kappa=50", allow_import=False).params["kappa"] == 50
    assert resolve_function("x**2 + y**2", start=(1.0, 1.0), allow_import=False)([1.0, 2.0]) == 5.0


def _write_import_trap(folder, monkeypatch):
    """A module whose import leaves a file behind: proof that it was (or was not) imported."""
    trap = folder / "IMPORTED"
    (folder / "trap.py").write_text(
        f"open({str(trap)!r}, 'w').close()\n\ndef bowl(p):\n    return float(p[0] ** 2 + p[1] ** 2)\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "trap", raising=False)
    return trap


# ------------------------------------------------------------------------------ the command line

CLI_ESCAPES = [
    "np.__builtins__['exec'](\"import os; os.system('touch X')\")",
    "np.save('X', x)",
    "__import__('os').system('touch X')",
    "'{0.__class__}'.format(x)",
    "(" * 100_000,
    "10**10**10",
]


@pytest.mark.parametrize("expr", CLI_ESCAPES, ids=[e[:40] for e in CLI_ESCAPES])
def test_race_refuses_escapes_in_one_line_without_traceback_or_files(expr, workdir, capsys):
    assert main(["race", expr, "--steps", "3", "--no-gif", "--optimizers", "sgd"]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("descend race: FUNCTION: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert list(workdir.iterdir()) == []  # neither X nor a run folder


def test_race_refuses_an_escape_through_a_real_process(workdir):
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "descend", "race", "np.__builtins__['__import__']('os').system('touch X')"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "not allowed in an expression" in proc.stderr
    assert list(workdir.iterdir()) == []


# ------------------------------------------------------------------------------ run folders


@pytest.fixture
def race_folder(workdir):
    folder = workdir / "run"
    args = ["race", "x**2 + 3*y**2", "--start", "1,1", "--steps", "5", "--no-gif", "--optimizers", "sgd"]
    assert main([*args, "--out", str(folder)]) == 0
    return folder


def _set_function(folder, name):
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["function"]["name"] = name
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_an_untouched_expression_run_folder_is_redrawn_through_the_evaluator(race_folder):
    command, [(kind, result)] = load_run(race_folder)
    assert (command, kind) == ("race", "race")
    assert result.function([1.0, 2.0]) == 13.0
    assert result.function.name == "x**2 + 3*y**2"


@pytest.mark.parametrize(
    "name",
    [
        "np.save('X', x)",
        "np.__builtins__['exec'](\"import os; os.system('touch X')\")",
        "__import__('os').system('touch X')",
    ],
)
def test_a_run_folder_edited_to_hold_an_escape_runs_nothing(name, race_folder, workdir, capsys):
    _set_function(race_folder, name)
    with pytest.raises(ParameterError, match=r"not allowed|unknown name"):
        load_run(race_folder)
    assert main(["report", str(race_folder)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and err.startswith("descend report: RUNS: ")
    assert not (workdir / "X").exists() and not (workdir / "X.npy").exists()


def test_a_run_folder_naming_module_callable_is_not_imported(race_folder, workdir, monkeypatch, capsys):
    trap = _write_import_trap(workdir, monkeypatch)
    _set_function(race_folder, "trap:bowl")
    assert main(["report", str(race_folder)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "names Python code to import" in err and "descend race 'trap:bowl'" in err
    assert not trap.exists() and "trap" not in sys.modules
    _set_function(race_folder, "os:system")  # a module already imported: still refused, never called
    with pytest.raises(ParameterError, match="names Python code to import"):
        load_run(race_folder)


def test_a_run_folder_with_python_yaml_tags_is_refused_as_data(race_folder, workdir, capsys):
    text = (race_folder / "config.yaml").read_text()
    (race_folder / "config.yaml").write_text("evil: !!python/object/apply:os.system ['touch X']\n" + text)
    assert main(["report", str(race_folder)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "is not plain YAML data" in err and "Traceback" not in err
    assert not (workdir / "X").exists()


def test_a_difference_without_spaces_is_an_expression_and_a_hyphenated_name_a_name():
    """'x-y' is arithmetic (it was taken for a function name 'x_y'); 'six-hump-camel' stays a name."""
    point = np.array([3.0, 1.0])
    assert resolve_function("x-y")(point) == 2.0
    assert resolve_function("y-x")(point) == -2.0
    assert resolve_function("x-y")(point) == resolve_function("x - y")(point)
    assert type(resolve_function("six-hump-camel")) is type(resolve_function("six_hump_camel"))
