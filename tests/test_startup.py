"""Start-up: `import bayes_scaling`, the command line's --help and `laws` load none of the heavy libraries, and
every public name still resolves to what it names (PEP 562 lazy attributes)."""

import json
import subprocess
import sys
import types

import bayes_scaling as bs

HEAVY = ("pymc", "pytensor", "pandas", "xarray", "scipy", "nutpie", "matplotlib")


def _loaded_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_help_and_laws_load_no_heavy_library():
    assert _loaded_after("import bayes_scaling") == []
    for argv in (["laws"], ["laws", "--json"], ["--help"]):
        code = (
            "import contextlib, io\nfrom bayes_scaling.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit): main({argv!r})"
        )
        assert _loaded_after(code) == [], argv


def test_saved_fit_commands_do_not_load_the_sampler(stored_fit_path):
    code = (
        "import contextlib, io\nfrom bayes_scaling.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['summary', {str(stored_fit_path)!r}])"
    )
    loaded = _loaded_after(code)
    assert "pymc" not in loaded and "pytensor" not in loaded and "nutpie" not in loaded, loaded


def test_every_public_name_resolves():
    # __all__ is written out for linters; it must list exactly the errors, the version and the lazy names
    assert sorted(bs.__all__) == sorted({*bs.errors.__all__, "__version__", *bs._LAZY})
    for name in bs.__all__:
        value = getattr(bs, name)
        assert not isinstance(value, types.ModuleType), name
    # importing a submodule first leaves the package's functions in place (no module shadows a function)
    import bayes_scaling.calibrate
    import bayes_scaling.comparison
    import bayes_scaling.fitting  # noqa: F401

    assert callable(bs.fit) and callable(bs.compare) and callable(bs.calibration)
    assert sorted(dir(bs)) == sorted(bs.__all__)


def test_a_fit_loads_neither_arviz_nor_scipy_stats(tmp_path):
    """A fit, as the command line runs it, imports nutpie without arviz's statistics and plots
    (native.import_nutpie) and draws its kappa and checks its runs without scipy.stats (1.5-2.5 s of every
    fitting process); ``import arviz`` afterwards gets arviz itself."""
    runs = tmp_path / "runs.csv"
    runs.write_text("n_params,loss\n1e7,3.9\n3e7,3.5\n1e8,3.2\n3e8,3.0\n1e9,2.85\n3e9,2.75\n")
    code = (
        "import contextlib, io, sys, warnings\nfrom bayes_scaling.cli import main\nwarnings.simplefilter('ignore')\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['fit', {str(runs)!r}, '--law', 'kaplan_n', "
        "'--draws', '100', '--tune', '100', '--chains', '2', '--no-progress'])\n"
        "print(' '.join(m for m in ('arviz', 'arviz_stats', 'arviz_plots', 'matplotlib', 'scipy.stats') "
        "if m in sys.modules))\n"
        "import arviz\nprint(callable(arviz.loo), type(arviz).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-2:] == ["", "True module"], out.stdout


def test_the_program_exits_with_mains_code(tmp_path):
    """``bayes-scaling`` (cli.run: main, then exit without collecting) keeps main's exit codes: 0, and 2 with
    one line for an error a user can cause."""
    program = [sys.executable, "-m", "bayes_scaling.cli"]
    ok = subprocess.run([*program, "laws", "--json"], capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["rows"], ok.stdout[:200]
    bad = subprocess.run([*program, "fit", str(tmp_path / "missing.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("bayes-scaling: error:"), bad.stderr
