"""The ``bayes-scaling`` command.

Errors a user can cause (any :class:`~bayes_scaling.BayesScalingError`) print one line and exit with 2;
anything else is a bug and shows its traceback. Warnings print as ``bayes-scaling: warning: ...``; when
stderr is not a terminal, each phase of long work (compiling, sampling, scoring) logs one line.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import re
import shlex
import sys
import tomllib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, intervals
from .errors import BayesScalingError, FitFileError, OptionError, SamplingWarning
from .laws import Law, list_laws, load_law
from .observation import LIKELIHOODS, NOISE_PRIORS, TARGETS
from .priors import parse_prior
from .samplers import SAMPLERS

if TYPE_CHECKING:  # the commands import what they use: --help and `laws` load no PyMC, pandas or xarray
    import pandas as pd

    from .result import ScalingFit

#: Version of the JSON the commands print (``--json``); raised when its shape changes.
SCHEMA = 1


class CLIError(OptionError):
    """Bad command-line input."""


def _pairs(text: str, what: str, out: dict[str, str] | None = None) -> dict[str, str]:
    """``"N=7e10,D=1.4e12"`` -> ``{"N": "7e10", "D": "1.4e12"}``, added to ``out`` (the pairs of the option's
    earlier uses) when given; a name given twice is an error."""
    out = {} if out is None else out
    for part in [p for p in (p.strip() for p in text.split(",")) if p] or [text]:
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CLIError(f"{what}: expected NAME=VALUE, got {part!r}")
        if key.strip() in out:
            raise CLIError(f"{what}: {key.strip()!r} is given twice")
        out[key.strip()] = value.strip()
    return out


def _points(texts: Sequence[str]) -> list[dict[str, Any]]:
    """Each ``--at N=7e10,D=1.4e12`` as ``{"N": 7e10, "D": 1.4e12}``; the names of options of a prediction
    (``prob``, ``seed`` ...) are not inputs."""
    points = []
    for text in texts:
        pairs = _pairs(text, "--at")
        options = sorted(set(pairs) & {"runs", "prob", "kind", "group", "new_group", "seed"})
        if options:
            raise CLIError(f"--at takes the law's inputs, and {options[0]!r} is not one (it is an option)")
        try:
            points.append({k: float(v) for k, v in pairs.items()})
        except ValueError as err:
            raise CLIError(f"--at: {err}") from None
    return points


def _numbers(text: str, what: str) -> list[float]:
    """``"1e21,1e23"`` -> ``[1e21, 1e23]``, or an error naming the option."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise CLIError(f"{what}: expected numbers like 1e21,1e23, got {text!r} ({err})") from None


#: What a figure may be saved as (matplotlib's formats), by its file's suffix.
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".svgz", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".eps", ".ps", ".pgf")
#: The options naming files a command reads, and those naming files it writes.
_INPUTS = ("data", "fit", "runs", "heldout", "candidates", "law", "priors")
_OUTPUTS = {"csv": "--csv", "out": "--out", "plot": "--plot", "save": "--save"}


def _distinct_files(args: argparse.Namespace) -> None:
    """Refuse, before any work, two outputs at one path, or an output at an input's path (even with
    --overwrite: the result would replace what it was made from)."""
    read = {Path(v).resolve(): k for k in _INPUTS if isinstance(v := getattr(args, k, None), str) and v}
    written: dict[Path, str] = {}
    for dest, option in _OUTPUTS.items():
        value = getattr(args, dest, None)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).resolve()
        if path in written:
            raise CLIError(f"{written[path]} and {option} name the same file {value!r}")
        if path in read:
            raise CLIError(f"{option} {value!r} is the file this command reads ({read[path]}); write elsewhere")
        written[path] = option


def _output(path: str | None, what: str, overwrite: bool = False) -> None:
    """Refuse, before any work, an output path that is empty, a folder, exists (unless ``overwrite``) or
    whose folder does not; a figure needs a suffix that names its format."""
    if path is None:
        return
    if not path:
        raise CLIError(f"{what} needs a file name")
    if Path(path).is_dir():
        raise CLIError(f"{what} {path!r} is a folder; give a file name")
    if what == "--plot" and Path(path).suffix.lower() not in FIGURE_SUFFIXES:
        raise CLIError(f"--plot {path!r}: end it with a figure format, one of {', '.join(FIGURE_SUFFIXES)}")
    if Path(path).exists() and not overwrite:
        raise CLIError(f"{what} {path!r} exists; pass --overwrite to replace it")
    if not Path(path).resolve().parent.is_dir():
        raise CLIError(f"{what} {path!r}: folder {str(Path(path).parent)!r} does not exist")


def _fit_meta(result: ScalingFit, *, diagnostics: bool = True) -> dict[str, Any]:
    """What every JSON output says of the fit behind it: its law and its number of runs (and diagnostics)."""
    meta: dict[str, Any] = {"law": result.law.name, "runs": len(result.runs)}
    if diagnostics:
        meta["diagnostics"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.diagnostics.items()}
    return meta


def _json_safe(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN or infinity as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_json(payload: dict[str, Any]) -> None:
    """One JSON object on stdout, led by the schema and package version (strict JSON: no NaN)."""
    print(
        json.dumps(
            _json_safe({"schema": SCHEMA, "version": __version__, **payload}), indent=2, allow_nan=False, default=str
        )
    )


def _emit(table: pd.DataFrame, args: argparse.Namespace, *, title: str = "", **meta: Any) -> None:
    """Print a table (or with --json one JSON object: the schema and package version, ``meta`` and the
    rows), and with --csv also write it as CSV."""
    import pandas as pd

    rows = table.reset_index() if any(table.index.names) else table
    if getattr(args, "csv", None):
        rows.to_csv(args.csv, index=False)
    if args.json:
        _print_json({"interval": "equal-tailed", **meta, "rows": rows.to_dict(orient="records")})
        return
    if title:
        print(title)
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string() if len(table) else "(none)")
    for key, value in meta.items():
        print(f"{key}: {value}")


# ------------------------------------------------------------------------------------------------ options
def _sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler", choices=SAMPLERS, default="nutpie")
    p.add_argument("--likelihood", choices=LIKELIHOODS, default="student_t")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--adaptation",
        choices=("auto", "low_rank", "diag"),
        default="auto",
        help="nutpie's mass matrix adaptation (auto: low_rank, sampled again with diag if its chains disagree or "
        "diverge)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the sampler's progress bar")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2) on a fit with R-hat > 1.01, ESS < 400 or any divergence, instead of warning",
    )
    p.add_argument(
        "--no-discrepancy",
        action="store_true",
        help="bands of the fitted law alone, without its extrapolation discrepancy (overconfident beyond the runs)",
    )


def _fit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "likelihood": args.likelihood,
        "sampler": args.sampler,
        "chains": args.chains,
        "draws": args.draws,
        "tune": args.tune,
        "seed": args.seed,
        "adaptation": args.adaptation,
        "progressbar": not args.no_progress and sys.stderr.isatty(),
        "discrepancy": not args.no_discrepancy,
        "strict": args.strict,
    }


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--law", default="chinchilla", help="law name (see `laws`) or path to a law TOML file")
    p.add_argument("--group", default=None, help="group column (parameters are partially pooled across groups)")
    p.add_argument(
        "--pooling",
        default=None,
        choices=("shared", "partial", "none"),
        help="pooling of every parameter across groups (default partial)",
    )
    p.add_argument(
        "--parametrisation",
        default="non_centred",
        choices=("non_centred", "centred"),
        help="how partially pooled parameters are sampled (centred: for many groups whose runs pin their values down)",
    )
    p.add_argument("--noise-by-group", action="store_true", help="one observation noise scale per group")
    p.add_argument(
        "--autocorrelated",
        metavar="INPUT",
        help="the law's input (a step count) along which each group's noise is autocorrelated: the group's rows "
        "are checkpoints of one run",
    )
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="KEY=COL",
        help="map an input or 'loss' to a column, e.g. N=params,loss=val_loss",
    )
    _target_arg(p)
    p.add_argument(
        "--formula",
        default=None,
        help="a law of your own instead of --law, e.g. 'E + A * N**-alpha' (every parameter needs a prior)",
    )
    p.add_argument("--inputs", default=None, help="inputs of --formula, e.g. N,D (default: N, D, C, U found in it)")
    p.add_argument(
        "--kind",
        default=None,
        choices=tuple(TARGETS),
        help="what --formula predicts: positive (a loss; default), real (any number) or bounded (in (0, 1))",
    )
    p.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="NAME=DIST(...)",
        help="override a prior, e.g. 'alpha=LogNormal(mu=-1, sigma=0.3)'",
    )
    p.add_argument(
        "--priors",
        default=None,
        metavar="FILE.toml",
        help='priors as TOML: alpha = "Beta(2, 5)" or alpha = {dist = "Beta", kwargs = {alpha = 2, beta = 5}}',
    )


def _priors(args: argparse.Namespace) -> dict:
    """Priors from --priors FILE.toml, overridden by each --prior NAME=Dist(...)."""
    priors: dict = {}
    if args.priors:
        path = Path(args.priors)
        if not path.is_file():
            raise FitFileError(f"no priors file at {args.priors!r}")
        try:
            priors.update(tomllib.loads(path.read_text()))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise CLIError(f"--priors {args.priors!r}: invalid TOML: {err}") from None
    for text in args.prior:
        name, sep, spec = text.partition("=")
        if not sep:
            raise CLIError(f"--prior: expected NAME=Dist(...), got {text!r}")
        priors[name.strip()] = parse_prior(name.strip(), spec)
    return priors


def _target_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        default=None,
        metavar="COLUMN",
        help="the column the law predicts (default 'loss'); the law file says what kind of quantity it is",
    )


def _columns(args: argparse.Namespace) -> dict[str, str] | None:
    columns: dict[str, str] = {}
    for text in args.column:
        _pairs(text, "--column", columns)
    if args.target is not None:
        if columns.get("loss", args.target) != args.target:
            raise CLIError(f"--target {args.target!r} and --column loss={columns['loss']!r} disagree; give one")
        columns["loss"] = args.target
    return columns or None


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``fit``'s model options from the command line: law (or --formula), priors, group, pooling, columns."""
    priors = _priors(args)
    law: str | Law = args.law
    if args.formula is not None:
        names = re.findall(r"[A-Za-z_]\w*", args.formula)
        inputs = (
            args.inputs.split(",") if args.inputs else [n for n in dict.fromkeys(names) if n in ("N", "D", "C", "U")]
        )
        noise = {k: priors.pop(k) for k in list(priors) if k in (*NOISE_PRIORS, "kappa") or k.endswith("_sd")}
        law = Law.from_formula(args.formula, inputs=inputs, priors=priors, target=args.kind or "positive")
        priors = noise
    elif args.kind is not None:
        raise CLIError("--kind describes a --formula; a law file declares its own target kind (target = ...)")
    return {
        "law": law,
        "priors": priors or None,
        "group": args.group,
        "columns": _columns(args),
        "pooling": args.pooling,
        "parametrisation": args.parametrisation,
        "noise_by_group": args.noise_by_group,
        "autocorrelated": args.autocorrelated,
    }


def _fitted(args: argparse.Namespace, data: Any) -> ScalingFit:
    from .fitting import fit

    return fit(data, **_model_kwargs(args), **_fit_kwargs(args))


def _saved_fit_only(args: argparse.Namespace, path: str) -> ScalingFit:
    """A saved fit, refusing model options that would be silently ignored."""
    from .result import ScalingFit

    model_options = argparse.ArgumentParser(add_help=False)
    _model_args(model_options)
    defaults = vars(model_options.parse_args([]))  # the model options' defaults, to tell which a user gave
    given = [f"--{k.replace('_', '-')}" for k, v in defaults.items() if getattr(args, k, v) != v]
    if given:
        raise CLIError(f"{path!r} is a saved fit: {', '.join(given)} would not change it (refit from the runs instead)")
    return ScalingFit.load(path)


# ------------------------------------------------------------------------------------------------ commands
def cmd_laws(args: argparse.Namespace) -> None:
    """The bundled laws, one a line (printed without pandas: listing them is instant)."""
    laws = [load_law(name) for name in list_laws()]
    rows: list[dict[str, Any]] = [
        {
            "name": law.name,
            "inputs": list(law.inputs),
            "formula": str(law.formula),
            "params": list(law.params),
            "citation": law.citation,
        }
        for law in laws
    ]
    if args.json:
        _print_json({"rows": rows})
        return
    cells = [["name", "inputs", "params", "formula"]]  # the formula last: some are long
    cells += [[r["name"], ",".join(r["inputs"]), ",".join(r["params"]), r["formula"]] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_fit(args: argparse.Namespace) -> None:
    intervals.check_probs(args.prob)  # before sampling, not after
    _output(args.out, "--out", args.overwrite)
    result = _fitted(args, args.data)
    meta = _fit_meta(result)
    table = result.summary(prob=args.prob)
    if args.out:
        result.save(args.out, overwrite=args.overwrite)
        meta["saved"] = args.out
    _emit(
        table,
        args,
        title=f"{result.law.title} on {len(result.runs)} runs ({table.attrs['interval']} intervals)",
        **meta,
    )


def cmd_summary(args: argparse.Namespace) -> None:
    from .result import ScalingFit

    result = ScalingFit.load(args.fit)
    table = result.summary(prob=args.prob)
    _emit(table, args, title=f"{result.law.title} ({table.attrs['interval']} intervals)", **_fit_meta(result))


def cmd_modes(args: argparse.Namespace) -> None:
    from .result import ScalingFit

    if (args.keep is None) != (args.out is None):
        raise CLIError(
            "--keep needs --out FILE.nc (where to save the fit with only those chains), and --out needs --keep"
        )
    _output(args.out, "--out", args.overwrite)
    result = ScalingFit.load(args.fit)
    if args.keep is not None:
        tokens = [t.strip() for t in args.keep.split(",")]
        bad = [t for t in tokens if not (t.isascii() and t.isdigit())]
        if bad:
            raise CLIError(f"--keep: chain {bad[0]!r} is not a chain number (0, 1, ...)")
        result = result.keep_chains([int(t) for t in tokens])
    table = result.modes(seed=args.seed)  # before saving: a fit it cannot weigh is not saved
    if args.out:
        result.save(args.out, overwrite=args.overwrite)
    title = f"modes of {result.law.title}'s chains (share: of the posterior mass, by bridge sampling)"
    _emit(table, args, title=title, **_fit_meta(result), **({"saved": args.out} if args.keep is not None else {}))


def cmd_predict(args: argparse.Namespace) -> None:
    import pandas as pd

    from .data import read_table
    from .result import ScalingFit

    result = ScalingFit.load(args.fit)
    if bool(args.at) == bool(args.runs):
        raise CLIError("give the points with --at N=..,D=.. (repeatable) or --runs FILE.csv, one of the two")
    options: dict[str, Any] = {
        "prob": tuple(args.prob),
        "kind": args.kind,
        "group": args.group,
        "new_group": args.new_group,
    }
    if args.runs:
        table = result.predict(read_table(args.runs), **options)
    else:
        table = pd.concat([result.predict(**options, **p) for p in _points(args.at)], ignore_index=True)
    meta = {**_fit_meta(result, diagnostics=False), "kind": args.kind}
    if "observed" in table:
        meta["inside"] = {c.removeprefix("inside_"): int(table[c].sum()) for c in table if c.startswith("inside_")}
        meta["heldout"] = len(table)
    target = result.runs.columns["loss"]
    _emit(table, args, title=f"predicted {args.kind} {target} ({table.attrs['interval']})", **meta)


def _calibration_figure(cal: Any, path: str) -> None:
    from matplotlib.figure import Figure

    from .plots import plot_calibration, plot_pit

    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    plot_calibration(cal, ax=left)
    plot_pit(cal, ax=right)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def cmd_calibrate(args: argparse.Namespace) -> None:
    from .calibrate import calibration
    from .comparison import split_future
    from .data import read_table

    _output(args.plot, "--plot", args.overwrite)
    if args.data.endswith(".nc"):
        if not args.runs:
            raise CLIError("calibrate FIT.nc needs --runs HELDOUT.csv: runs the fit did not see, with their loss")
        result, test = _saved_fit_only(args, args.data), read_table(args.runs)
    else:
        if args.runs:
            raise CLIError("--runs goes with a saved fit (FIT.nc); a CSV of runs is split by --holdout")
        train, test = split_future(args.data, args.holdout, by=args.by, columns=_columns(args))
        result = _fitted(args, train)
    cal = calibration(result, test, new_group=args.new_group, seed=0)
    if args.plot:
        _calibration_figure(cal, args.plot)
    title = (
        f"Calibration of {result.law.name} on {len(test)} held-out runs (fitted on {len(result.runs)}): "
        "share inside each equal-tailed interval of a new run"
    )
    meta = {
        **_fit_meta(result, diagnostics=False),
        "heldout": len(test),
        "summary": {k: round(v, 6) for k, v in cal.summary.items()},
        **({"plot": args.plot} if args.plot else {}),
    }
    _emit(cal.curve, args, title=title, **meta)


def _future_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of the leave-future-out commands (backtest, stack): laws, splits and the fit's options."""
    return {
        **_fit_kwargs(args),
        "laws": _laws(args.laws),
        "holdout": _numbers(args.holdout, "--holdout"),
        "by": args.by,
        "group": args.group,
        "columns": _columns(args),
        "client": args.client,
    }


def cmd_stack(args: argparse.Namespace) -> None:
    import pandas as pd

    from .comparison import stack
    from .laws import load_law

    options = _future_options(args)
    points = _points(args.at)  # checked before the fits, which take minutes
    for law in map(load_law, options["laws"]):
        for point in points:
            law.check_inputs(point)
    result = stack(args.data, **options)
    assert result.lfo is not None, "stack() scores every law"
    meta = {"laws": list(result.fits), "runs": len(next(iter(result.fits.values())).runs)}
    if not args.at:
        table = result.lfo
        if result.lfo_groups is not None:  # all the groups' predictions first, then each group's own
            pooled = result.lfo.assign(**{args.group: "(all)"}).set_index(args.group, append=True)
            table = pd.concat([pooled.reorder_levels([1, 0]), result.lfo_groups])
        _emit(
            table,
            args,
            title="Leave-future-out stacking: each law's summed log score on runs beyond its "
            "fit (elpd_lfo), 90% coverage there, and its weight",
            **meta,
        )
        return
    groups = list(next(iter(result.fits.values())).runs.groups) if args.group else [None]
    pred = pd.concat(
        [result.predict(prob=tuple(args.prob), kind=args.kind, group=g, seed=0, **p) for p in points for g in groups],
        ignore_index=True,
    )
    weights = {law: round(float(w), 6) for law, w in result.weights.items()}
    _emit(
        pred,
        args,
        title=f"stacked {args.kind} loss ({pred.attrs['interval']}) with leave-future-out weights {weights}",
        kind=args.kind,
        weights=result.lfo.reset_index().to_dict(orient="records"),
        **meta,
    )


def cmd_optimal(args: argparse.Namespace) -> None:
    from .result import ScalingFit

    result = ScalingFit.load(args.fit)
    table = result.compute_optimal(
        _numbers(args.compute, "--compute"),
        prob=tuple(args.prob),
        flops=args.flops,
        group=args.group,
        new_group=args.new_group,
    )
    _emit(
        table,
        args,
        title=f"compute-optimal allocation ({table.attrs['interval']}; FLOPs = {table.attrs['flops']})",
        **_fit_meta(result, diagnostics=False),
    )


def _grid(texts: Sequence[str]) -> dict[str, list]:
    """Each ``--grid COL=LO:HI:COUNT`` (COUNT log-spaced values) or ``--grid COL=A,B,...`` as a column's values."""
    import numpy as np

    from .design import MAX_CANDIDATES

    grid: dict[str, list] = {}
    for text in texts:
        column, sep, spec = text.partition("=")
        if not sep or not column.strip() or not spec.strip():
            raise CLIError(f"--grid: expected COL=LO:HI:COUNT or COL=A,B,..., got {text!r}")
        parts = spec.split(":")
        if len(parts) == 1:
            grid[column.strip()] = [v.strip() for v in spec.split(",") if v.strip()]
            continue
        try:
            lo, hi, count = float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else None
        except ValueError:
            count = None
        if count is None or not 1 <= count <= MAX_CANDIDATES or not 0 < lo <= hi < math.inf:
            raise CLIError(
                f"--grid {text!r}: expected LO:HI:COUNT, 0 < LO <= HI, a whole COUNT from 1 to {MAX_CANDIDATES:,}"
            )
        grid[column.strip()] = list(np.geomspace(lo, hi, count))
    return grid


def cmd_plan(args: argparse.Namespace) -> None:

    from .data import read_table
    from .design import OPTIMAL_TARGETS
    from .result import ScalingFit

    result = ScalingFit.load(args.fit)
    if bool(args.candidates) == bool(args.grid):
        raise CLIError("give the candidate runs with --candidates FILE.csv or --grid COL=LO:HI:COUNT, one of the two")
    if bool(args.at) == bool(args.target):
        raise CLIError(f"give the target with --at N=..,D=.. (repeatable) or --target {'|'.join(OPTIMAL_TARGETS)}")
    if args.target and not args.compute:
        raise CLIError(f"--target {args.target} needs --compute C1,C2,..., the budgets in FLOPs")
    if args.compute and not args.target:
        raise CLIError("--compute goes with --target N_opt|D_opt|loss_opt, not with --at")
    candidates = read_table(args.candidates) if args.candidates else _grid(args.grid)
    points = _points(args.at)
    target = args.target or {
        k: [p.get(k, math.nan) for p in points] for k in dict.fromkeys(k for p in points for k in p)
    }
    table = result.suggest_runs(
        candidates,
        target=target,
        C=_numbers(args.compute, "--compute") if args.compute else None,
        budget=args.budget,
        batch=args.batch,
        cost=args.cost,
        group=args.group,
        new_group=args.new_group,
        prob=args.prob,
        seed=args.seed,
    )
    width = f"{intervals.label(args.prob)}_width"
    _emit(
        table,
        args,
        title=f"runs to train next, in order (target: {table.attrs['target']}; {width}: the target's interval "
        "width expected once the runs so far are fitted)",
        width_now=table.attrs["width_now"],
        budget=args.budget,
        spent=float(table["cost"].sum()),
        **({"note": table.attrs["note"]} if "note" in table.attrs else {}),
        **_fit_meta(result, diagnostics=False),
    )


def cmd_report(args: argparse.Namespace) -> None:
    from .data import read_table
    from .report import _target, write_report

    target = _target(Path(args.out))
    if target.exists() and not args.overwrite:
        raise CLIError(f"{str(target)!r} exists; pass --overwrite to replace it")
    _output(args.save, "--save", args.overwrite)
    result = _saved_fit_only(args, args.data) if args.data.endswith(".nc") else _fitted(args, args.data)
    if args.save:
        result.save(args.save, overwrite=args.overwrite)
    path = write_report(
        result,
        args.out,
        at=_points(args.at),
        compute=_numbers(args.compute, "--compute") if args.compute else (),
        heldout=read_table(args.heldout) if args.heldout else None,
        command="bayes-scaling " + shlex.join(args.argv),
        overwrite=args.overwrite,
    )
    if args.json:
        _print_json({"report": str(path), "saved": args.save, **_fit_meta(result)})
    else:
        print(f"wrote {path}" + (f" and {args.save}" if args.save else ""))


def _laws(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise CLIError(f"--laws: name at least two laws separated by commas, got {text!r}")
    return names


def cmd_compare(args: argparse.Namespace) -> None:
    from .comparison import compare
    from .fitting import fit

    fits = {
        law: fit(args.data, law=law, group=args.group, columns=_columns(args), **_fit_kwargs(args))
        for law in _laws(args.laws)
    }
    table = compare(fits)
    _emit(
        table,
        args,
        title="PSIS-LOO comparison (elpd of the log-loss; weight: stacking)",
        laws=list(fits),
        runs=len(next(iter(fits.values())).runs),
    )


def cmd_backtest(args: argparse.Namespace) -> None:
    from .comparison import backtest
    from .data import read_table

    table = backtest(args.data, **_future_options(args))
    _emit(
        table,
        args,
        title=f"Leave-future-out backtest: fit the runs up to `cut` ({args.by}), score the rest "
        "(coverage of the predictive intervals of a new run)",
        laws=_laws(args.laws),
        runs=len(read_table(args.data)),
    )


def cmd_demo(args: argparse.Namespace) -> None:
    from .datasets import load_dataset
    from .fitting import fit

    runs = load_dataset("gadre2024")
    small, large = runs[runs["n_params"] < 5e8], runs[runs["n_params"] >= 5e8]
    if not args.json:
        print(
            f"Gadre et al. 2024: fitting chinchilla, partially pooled across 3 pretraining datasets, on "
            f"{len(small)} runs up to {small['n_params'].max() / 1e6:.0f}M parameters; "
            f"{len(large)} larger runs (1.4B, 6.9B) held out.\n"
        )
    result = fit(small, law="chinchilla", group="dataset", **_fit_kwargs(args))
    summary = result.summary(prob=0.9)
    pred = result.predict(large, prob=(0.5, 0.9), kind="observation", seed=0).drop(columns="new_group")
    pred.insert(0, "model", large["model_config"].to_numpy())
    if args.json:
        _print_json(
            {
                "interval": "equal-tailed",
                **_fit_meta(result),
                "summary": summary.reset_index().to_dict(orient="records"),
                "predictions": pred.to_dict(orient="records"),
            }
        )
        return
    plain = argparse.Namespace(json=False)
    _emit(summary, plain, title="Posterior: population and per-dataset values (90% equal-tailed intervals)")
    print()
    _emit(
        pred,
        plain,
        title="Held-out runs: predicted C4 loss of a new run (median, 50% and 90% equal-tailed) vs "
        "observed; distance: decades beyond the fitted runs",
    )
    print(
        f"\n{int(pred['inside_eti50'].sum())} of {len(pred)} held-out runs inside their 50% interval, "
        f"{int(pred['inside_eti90'].sum())} of {len(pred)} inside their 90% interval. Beyond the fitted runs the "
        "bands include the law's extrapolation discrepancy (kappa noise scales per decade of distance).\n"
        f"diagnostics: {_fit_meta(result)['diagnostics']}"
    )


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayes-scaling", description="Bayesian fits of neural scaling laws.")
    parser.add_argument("--version", action="version", version=f"bayes-scaling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, helptext: str, func: Any, *, json_out: bool = True, csv_out: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.set_defaults(func=func)
        if json_out:
            p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        if csv_out:
            p.add_argument("--csv", default=None, metavar="FILE.csv", help="also write the table as CSV")
            p.add_argument("--overwrite", action="store_true", help="replace output files (--csv, --out, --plot)")
        return p

    def runs_arg(p: argparse.ArgumentParser, what: str = "runs: CSV or parquet, one row per run") -> None:
        p.add_argument("data", help=what)

    p = command("laws", "list the bundled laws", cmd_laws)

    p = command(
        "demo",
        "fit the bundled Gadre 2024 runs (3 datasets as groups) and predict the held-out 1.4B / 6.9B runs",
        cmd_demo,
    )
    _sampler_args(p)
    p.set_defaults(seed=1)  # the demo prints the same numbers every time

    p = command("fit", "fit a law to a table of runs", cmd_fit, csv_out=True)
    runs_arg(p)
    _model_args(p)
    p.add_argument("--out", default=None, help="save the fit to this netCDF file")
    p.add_argument("--prob", type=float, default=intervals.PROB)
    _sampler_args(p)

    p = command("summary", "summarise a saved fit", cmd_summary, csv_out=True)
    p.add_argument("fit")
    p.add_argument("--prob", type=float, default=intervals.PROB)

    p = command(
        "modes",
        "the modes a saved fit's chains settled in, each with its share of the posterior mass",
        cmd_modes,
        csv_out=True,
    )
    p.add_argument("fit")
    p.add_argument("--keep", default=None, metavar="0,1,..", help="keep only these chains (with --out)")
    p.add_argument("--out", default=None, metavar="FILE.nc", help="with --keep: save the fit with those chains")
    p.add_argument("--seed", type=int, default=0, help="seed of the bridge sampling's draws")

    p = command("predict", "predict loss from a saved fit", cmd_predict, csv_out=True)
    p.add_argument("fit")
    p.add_argument("--at", action="append", default=[], metavar="N=..,D=..", help="inputs; repeat for more points")
    p.add_argument(
        "--runs",
        default=None,
        metavar="FILE.csv",
        help="predict at these runs instead; with their loss column, say which fall inside each interval",
    )
    p.add_argument("--prob", type=float, action="append", default=None, help="interval probability; repeatable")
    p.add_argument("--kind", choices=("mean", "observation"), default="mean")
    p.add_argument("--group", default=None, help="for a grouped fit: a group's label")
    p.add_argument("--new-group", action="store_true", help="allow group labels the fit does not know (a new group)")

    p = command(
        "optimal", "compute-optimal N, D and loss at given budgets, from a saved fit", cmd_optimal, csv_out=True
    )
    p.add_argument("fit")
    p.add_argument("--compute", required=True, metavar="C1,C2,...", help="budgets in FLOPs, e.g. 1e21,1e23,5.76e23")
    p.add_argument("--prob", type=float, action="append", default=None, help="interval probability; repeatable")
    p.add_argument("--flops", default=None, help="FLOPs formula in N and D (default: the law's, 6 * N * D)")
    p.add_argument("--group", default=None, help="for a grouped fit: one group (default: every group)")
    p.add_argument("--new-group", action="store_true", help="allow a group label the fit does not know")

    p = command(
        "plan",
        "which runs to train next: from candidates, those that most shrink a target's interval per unit cost",
        cmd_plan,
        csv_out=True,
    )
    p.add_argument("fit")
    p.add_argument("--candidates", default=None, metavar="FILE.csv", help="candidate runs, with the fit's columns")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="COL=LO:HI:COUNT",
        help="candidates on a grid instead: COUNT log-spaced values of a column, or COL=A,B (a group column); repeat",
    )
    p.add_argument("--at", action="append", default=[], metavar="N=..,D=..", help="target: the loss here; repeatable")
    p.add_argument("--target", default=None, choices=("N_opt", "D_opt", "loss_opt"), help="or a compute-optimal target")
    p.add_argument("--compute", default=None, metavar="C1,C2,...", help="with --target: the budgets in FLOPs")
    p.add_argument("--budget", type=float, required=True, help="the most the new runs may cost together (FLOPs)")
    p.add_argument("--batch", type=int, default=None, help="at most this many runs")
    p.add_argument("--cost", default=None, help="a run's cost as a formula in the law's inputs (default: its FLOPs)")
    p.add_argument("--group", default=None, help="for a grouped fit: the target's group (default: every group)")
    p.add_argument("--new-group", action="store_true", help="allow a target group the fit does not know")
    p.add_argument("--prob", type=float, default=intervals.PROB, help="the interval whose width is reported")
    p.add_argument("--seed", type=int, default=None)

    p = command(
        "report",
        "fit a table of runs (or load FIT.nc) and write one self-contained HTML report that "
        "opens with the compute-optimal allocation per budget",
        cmd_report,
    )
    runs_arg(p, "runs (CSV or parquet) to fit, or a saved fit (.nc)")
    _model_args(p)
    p.add_argument("--at", action="append", default=[], metavar="N=..,D=..", help="extrapolation targets; repeatable")
    p.add_argument(
        "--compute",
        default=None,
        metavar="C1,C2,...",
        help="budgets for the decision table (default: 10, 100 and 1000 times the largest run)",
    )
    p.add_argument(
        "--heldout",
        default=None,
        metavar="RUNS.csv",
        help="runs the fit did not see, with their loss: the report checks its intervals on them",
    )
    p.add_argument("--out", required=True, help="the report: FILE.html, or a folder that gets index.html")
    p.add_argument("--save", default=None, metavar="FIT.nc", help="also save the fit")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report (and --save) of the same name")
    _sampler_args(p)

    p = command(
        "calibrate",
        "check the predictive intervals on held-out runs: coverage against nominal probability, PIT, interval score",
        cmd_calibrate,
        csv_out=True,
    )
    runs_arg(p, "runs (CSV or parquet; split by --holdout, the lower part fitted), or a saved fit (.nc)")
    _model_args(p)
    p.add_argument(
        "--runs", default=None, metavar="HELDOUT.csv", help="with FIT.nc: runs it did not see, with their loss"
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="fraction of the runs with the most compute to hold out, or a threshold (default 0.2)",
    )
    p.add_argument("--by", choices=("C", "N", "D"), default="C", help="order runs by compute, N or D")
    p.add_argument("--new-group", action="store_true", help="allow held-out runs of groups the fit does not know")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="save the reliability diagram and PIT histogram")
    _sampler_args(p)

    for name, helptext, func in (
        ("compare", "fit several laws to the runs and compare them by PSIS-LOO", cmd_compare),
        ("backtest", "fit several laws on the smaller runs and score them on the larger", cmd_backtest),
        ("stack", "stack several laws by leave-future-out scores; predict with the mixture", cmd_stack),
    ):
        p = command(name, helptext, func, csv_out=True)
        runs_arg(p)
        p.add_argument("--laws", required=True, metavar="A,B,...", help="law names, e.g. chinchilla,kaplan_nd")
        p.add_argument("--group", default=None)
        p.add_argument("--column", action="append", default=[], metavar="KEY=COL")
        _target_arg(p)
        if name != "compare":
            p.add_argument(
                "--holdout",
                default="0.2" if name == "backtest" else "0.4,0.3,0.2",
                metavar="H[,H...]",
                help="fractions of the runs with the most compute to hold out, or thresholds; several "
                "for a rolling origin",
            )
            p.add_argument("--by", choices=("C", "N", "D"), default="C", help="order runs by compute, N or D")
            p.add_argument(
                "--client",
                default=None,
                metavar="local|ADDRESS",
                help="run the fits on Dask: 'local' (a process per core) or a scheduler address (a cluster)",
            )
        if name == "stack":
            p.add_argument("--at", action="append", default=[], metavar="N=..,D=..", help="predict here; repeatable")
            p.add_argument("--prob", type=float, action="append", default=None, help="interval probability; repeatable")
            p.add_argument("--kind", choices=("mean", "observation"), default="mean")
        _sampler_args(p)
    return parser


def _show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None) -> None:
    print(f"bayes-scaling: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; errors a user can cause print one line and exit with 2, bugs show a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command as given, for the report's provenance
    if getattr(args, "prob", 0) is None:
        args.prob = list(intervals.PROBS)
    logger = logging.getLogger("bayes_scaling")
    handler, level = None, logger.level
    if not sys.stderr.isatty():  # no progress bar there: one line per phase instead
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("bayes-scaling: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        _distinct_files(args)
        _output(getattr(args, "csv", None), "--csv", getattr(args, "overwrite", False))
        with warnings.catch_warnings():
            warnings.simplefilter("always", SamplingWarning)
            warnings.showwarning = _show_warning
            args.func(args)
    except BayesScalingError as err:
        print(f"bayes-scaling: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)
    return 0


def run() -> None:
    """The ``bayes-scaling`` program: :func:`main`, then exit. Its objects are frozen out of the garbage
    collector first: the interpreter's collections at exit over a fit's 300,000 objects (PyMC, PyTensor,
    numba) took 0.6-0.8 s of every command, and freeing them is the operating system's job then."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
