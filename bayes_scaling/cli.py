"""The ``bayes-scaling`` command."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tomllib
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import intervals
from .calibration import calibration
from .compare import backtest, compare, split_future, stack
from .data import DataError, read_table
from .datasets import load_dataset
from .expr import ExpressionError
from .fit import LIKELIHOODS, SAMPLERS, fit
from .laws import Law, LawError, list_laws, load_law
from .priors import PriorError, parse_prior
from .result import SamplingWarning, ScalingFit

USER_ERRORS = (DataError, LawError, PriorError, ExpressionError, OSError, ValueError, KeyError)


class CLIError(ValueError):
    """Bad command-line input."""


def _pairs(text: str, what: str) -> dict[str, str]:
    """``"N=7e10,D=1.4e12"`` -> ``{"N": "7e10", "D": "1.4e12"}``."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CLIError(f"{what}: expected NAME=VALUE, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _points(texts: Sequence[str]) -> list[dict[str, float]]:
    """Each ``--at N=7e10,D=1.4e12`` as ``{"N": 7e10, "D": 1.4e12}``."""
    points = []
    for text in texts:
        pairs = _pairs(text, "--at")
        try:
            points.append({k: float(v) for k, v in pairs.items()})
        except ValueError as err:
            raise CLIError(f"--at: {err}") from None
    return points


def _emit(table: pd.DataFrame, args: argparse.Namespace, *, title: str = "", **meta: object) -> None:
    """Print a table, or with --json one JSON object: {"rows": [...], **meta}."""
    if args.json:
        rows = table.reset_index().to_dict(orient="records") if table.index.name else table.to_dict(orient="records")
        print(json.dumps({**meta, "rows": rows}, indent=2, default=float))
        return
    if title:
        print(title)
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string())
    for key, value in meta.items():
        print(f"{key}: {value}")


def _sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler", choices=SAMPLERS, default="nutpie")
    p.add_argument("--likelihood", choices=LIKELIHOODS, default="student_t")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--adaptation", choices=("diag", "low_rank"), default="diag",
                   help="nutpie's mass matrix adaptation (low_rank: faster on many runs, less robust on few)")
    p.add_argument("--no-progress", action="store_true", help="hide the sampler's progress bar")
    p.add_argument("--no-discrepancy", action="store_true",
                   help="bands of the fitted law alone, without its extrapolation discrepancy (overconfident "
                        "beyond the runs)")


def _fit_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        likelihood=args.likelihood, sampler=args.sampler, chains=args.chains, draws=args.draws, tune=args.tune,
        seed=args.seed, adaptation=args.adaptation, progressbar=not args.no_progress and sys.stderr.isatty(),
        discrepancy=not args.no_discrepancy,
    )


def _diagnostics_meta(result: ScalingFit) -> dict:
    d = result.diagnostics
    return {"diagnostics": {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}}


def cmd_laws(args: argparse.Namespace) -> None:
    laws = [load_law(name) for name in list_laws()]
    rows = [{"name": law.name, "inputs": list(law.inputs), "formula": str(law.formula), "params": list(law.params),
             "citation": law.citation} for law in laws]
    if args.json:
        print(json.dumps({"rows": rows}, indent=2))
    else:
        table = pd.DataFrame(rows).drop(columns="citation")
        _emit(table.assign(inputs=table["inputs"].str.join(","), params=table["params"].str.join(",")), args)


def _priors(args: argparse.Namespace) -> dict:
    """Priors from --priors FILE.toml, overridden by each --prior NAME=Dist(...)."""
    priors: dict = {}
    if args.priors:
        path = Path(args.priors)
        if not path.is_file():
            raise FileNotFoundError(f"no priors file at {args.priors!r}")
        try:
            priors.update(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as err:
            raise CLIError(f"--priors {args.priors!r}: invalid TOML: {err}") from None
    for text in args.prior:
        name, sep, spec = text.partition("=")
        if not sep:
            raise CLIError(f"--prior: expected NAME=Dist(...), got {text!r}")
        priors[name.strip()] = parse_prior(name.strip(), spec)
    return priors


def _columns(args: argparse.Namespace) -> dict[str, str] | None:
    columns: dict[str, str] = {}
    for text in args.column:
        columns.update(_pairs(text, "--column"))
    return columns or None


def cmd_fit(args: argparse.Namespace) -> None:
    priors = _priors(args)
    law = args.law
    if args.formula:
        names = re.findall(r"[A-Za-z_]\w*", args.formula)
        inputs = args.inputs.split(",") if args.inputs else [n for n in dict.fromkeys(names) if n in ("N", "D", "C", "U")]
        noise = {k: priors.pop(k) for k in ("sigma", "nu", "kappa") if k in priors}  # the observation model's
        law, priors = Law.from_formula(args.formula, inputs=inputs, priors=priors), noise
    columns = _columns(args)
    intervals.check_probs(args.prob)  # before sampling, not after
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise CLIError(f"{args.out!r} exists; pass --overwrite to replace it")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise CLIError(f"--out {args.out!r}: folder {str(Path(args.out).parent)!r} does not exist")
    result = fit(args.data, law=law, priors=priors or None, group=args.group, columns=columns,
                 pooling=args.pooling, noise_by_group=args.noise_by_group,
                 **_fit_kwargs(args))
    meta = _diagnostics_meta(result)
    table = result.summary(prob=args.prob)
    if args.out:
        result.save(args.out, overwrite=args.overwrite)
        meta["saved"] = args.out
    _emit(table, args, title=f"{result.law.title} on {len(result.runs)} runs ({table.attrs['interval']} intervals)",
          **meta)


def cmd_summary(args: argparse.Namespace) -> None:
    result = ScalingFit.load(args.fit)
    table = result.summary(prob=args.prob)
    _emit(table, args, title=f"{result.law.title} ({table.attrs['interval']} intervals)", **_diagnostics_meta(result))


def cmd_predict(args: argparse.Namespace) -> None:
    result = ScalingFit.load(args.fit)
    if bool(args.at) == bool(args.runs):
        raise CLIError("give the points with --at N=..,D=.. (repeatable) or --runs FILE.csv, one of the two")
    if args.runs:
        table = result.predict(read_table(args.runs), prob=tuple(args.prob), kind=args.kind, group=args.group)
    else:
        table = pd.concat([result.predict(prob=tuple(args.prob), kind=args.kind, group=args.group, **p)
                           for p in _points(args.at)], ignore_index=True)
    meta = {"interval": "equal-tailed", "kind": args.kind}
    if "observed" in table:
        meta["inside"] = {c.removeprefix("inside_"): int(table[c].sum()) for c in table if c.startswith("inside_")}
        meta["runs"] = len(table)
    _emit(table, args, title=f"predicted {args.kind} loss ({table.attrs['interval']})", **meta)


def _calibration_figure(cal, path: str) -> None:
    import matplotlib.pyplot as plt

    from .plots import plot_calibration, plot_pit

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    plot_calibration(cal, ax=left)
    plot_pit(cal, ax=right)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_calibrate(args: argparse.Namespace) -> None:
    if args.data.endswith(".nc"):
        if not args.runs:
            raise CLIError("calibrate FIT.nc needs --runs HELDOUT.csv: runs the fit did not see, with their loss")
        result, test = ScalingFit.load(args.data), read_table(args.runs)
    else:
        if args.runs:
            raise CLIError("--runs goes with a saved fit (FIT.nc); a CSV of runs is split by --holdout")
        train, test = split_future(args.data, args.holdout, by=args.by, columns=_columns(args))
        result = fit(train, law=args.law, group=args.group, columns=_columns(args), **_fit_kwargs(args))
    cal = calibration(result, test, seed=0)
    if args.plot:
        _calibration_figure(cal, args.plot)
    title = (f"Calibration of {result.law.name} on {len(test)} held-out runs (fitted on {len(result.runs)}): "
             "share inside each equal-tailed interval of a new run")
    meta = {"summary": {k: round(v, 6) for k, v in cal.summary.items()}, **({"plot": args.plot} if args.plot else {})}
    _emit(cal.curve, args, title=title, **meta)


def cmd_stack(args: argparse.Namespace) -> None:
    kwargs = _fit_kwargs(args)
    progress = kwargs.pop("progressbar")
    holdout = [float(h) for h in args.holdout.split(",")]
    result = stack(args.data, laws=_laws(args.laws), holdout=holdout, by=args.by, group=args.group,
                   columns=_columns(args), progressbar=progress, **kwargs)
    pred = None
    if args.at:
        pred = pd.concat([result.predict(prob=tuple(args.prob), kind=args.kind, group=args.group, seed=0, **p)
                          for p in _points(args.at)], ignore_index=True)
    if args.json:
        out = {"weights": result.lfo.reset_index().to_dict(orient="records"), "interval": "equal-tailed",
               "kind": args.kind}
        if pred is not None:
            out["predictions"] = pred.to_dict(orient="records")
        print(json.dumps(out, indent=2, default=float))
        return
    _emit(result.lfo, args, title="Leave-future-out stacking: each law's summed log score on runs beyond its "
          "fit (elpd_lfo), 90% coverage there, and its weight")
    if pred is not None:
        print()
        _emit(pred, args, title=f"stacked {args.kind} loss ({pred.attrs['interval']})")


def _budgets(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise CLIError(f"--compute: expected numbers like 1e21,1e23, got {text!r} ({err})") from None


def cmd_optimal(args: argparse.Namespace) -> None:
    result = ScalingFit.load(args.fit)
    table = result.compute_optimal(_budgets(args.compute), prob=tuple(args.prob), flops=args.flops, group=args.group)
    _emit(table, args, title=f"compute-optimal allocation ({table.attrs['interval']}; FLOPs = {table.attrs['flops']})",
          interval="equal-tailed")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import write_report

    if Path(args.out).exists() and not args.overwrite:
        raise CLIError(f"{args.out!r} exists; pass --overwrite to replace it")
    if args.data.endswith(".nc"):
        result = ScalingFit.load(args.data)
    else:
        result = fit(args.data, law=args.law, group=args.group, columns=_columns(args), **_fit_kwargs(args))
    points = _points(args.at)
    path = write_report(result, args.out, at=points, compute=_budgets(args.compute) if args.compute else (),
                        heldout=read_table(args.heldout) if args.heldout else None,
                        command="bayes-scaling " + shlex.join(sys.argv[1:]), overwrite=args.overwrite)
    print(json.dumps({"report": str(path)}) if args.json else f"wrote {path}")


def _laws(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise CLIError(f"--laws: name at least two laws separated by commas, got {text!r}")
    return names


def cmd_compare(args: argparse.Namespace) -> None:
    fits = {law: fit(args.data, law=law, group=args.group, columns=_columns(args), **_fit_kwargs(args))
            for law in _laws(args.laws)}
    table = compare(fits)
    _emit(table, args, title="PSIS-LOO comparison (elpd of the log-loss; weight: stacking)")


def cmd_backtest(args: argparse.Namespace) -> None:
    holdout = [float(h) for h in args.holdout.split(",")]
    kwargs = _fit_kwargs(args)
    progress = kwargs.pop("progressbar")
    table = backtest(args.data, laws=_laws(args.laws), holdout=holdout, by=args.by, group=args.group,
                     columns=_columns(args), progressbar=progress, **kwargs)
    _emit(table, args, title=f"Leave-future-out backtest: fit the runs up to `cut` ({args.by}), score the rest "
          "(coverage of the predictive intervals of a new run)", interval="equal-tailed")


def cmd_demo(args: argparse.Namespace) -> None:
    runs = load_dataset("gadre2024")
    small, large = runs[runs["n_params"] < 5e8], runs[runs["n_params"] >= 5e8]
    if not args.json:
        print(f"Gadre et al. 2024: fitting chinchilla, partially pooled across 3 pretraining datasets, on "
              f"{len(small)} runs up to {small['n_params'].max() / 1e6:.0f}M parameters; "
              f"{len(large)} larger runs (1.4B, 6.9B) held out.\n")
    result = fit(small, law="chinchilla", group="dataset", **_fit_kwargs(args))
    summary = result.summary(prob=0.9)
    pred = result.predict(large, prob=(0.5, 0.9), kind="observation", seed=0).drop(columns="new_group")
    pred.insert(0, "model", large["model_config"].to_numpy())
    if args.json:
        print(json.dumps({"summary": summary.reset_index().to_dict(orient="records"),
                          "predictions": pred.to_dict(orient="records"), **_diagnostics_meta(result)},
                         indent=2, default=float))
        return
    plain = argparse.Namespace(json=False)
    _emit(summary, plain, title="Posterior: population and per-dataset values (90% equal-tailed intervals)")
    print()
    _emit(pred, plain, title="Held-out runs: predicted C4 loss of a new run (median, 50% and 90% equal-tailed) vs "
          "observed; distance: decades beyond the fitted runs")
    print(f"\n{int(pred['inside_eti50'].sum())} of {len(pred)} held-out runs inside their 50% interval, "
          f"{int(pred['inside_eti90'].sum())} of {len(pred)} inside their 90% interval. Beyond the fitted runs the "
          "bands include the law's extrapolation discrepancy (kappa noise scales per decade of distance).\n"
          f"diagnostics: {_diagnostics_meta(result)['diagnostics']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayes-scaling", description="Bayesian fits of neural scaling laws.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("laws", help="list the bundled laws")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_laws)

    p = sub.add_parser("demo", help="fit the bundled Gadre 2024 runs (3 datasets as groups) and predict the held-out 1.4B / 6.9B runs")
    _sampler_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo, seed=1)  # the demo prints the same numbers every time

    p = sub.add_parser("fit", help="fit a law to a CSV of runs")
    p.add_argument("data", help="CSV with one row per run")
    p.add_argument("--law", default="chinchilla", help="law name (see `laws`) or path to a law TOML file")
    p.add_argument("--group", default=None, help="group column (parameters are partially pooled across groups)")
    p.add_argument("--pooling", default=None, choices=("shared", "partial", "none"),
                   help="pooling of every parameter across groups (default partial)")
    p.add_argument("--noise-by-group", action="store_true", help="one observation noise scale per group")
    p.add_argument("--column", action="append", default=[], metavar="KEY=COL",
                   help="map an input or 'loss' to a column, e.g. N=params,loss=val_loss")
    p.add_argument("--formula", default=None,
                   help="a law of your own instead of --law, e.g. 'E + A * N**-alpha' (every parameter needs a prior)")
    p.add_argument("--inputs", default=None, help="inputs of --formula, e.g. N,D (default: N, D, C, U found in it)")
    p.add_argument("--prior", action="append", default=[], metavar="NAME=DIST(...)",
                   help="override a prior, e.g. 'alpha=LogNormal(mu=-1, sigma=0.3)'")
    p.add_argument("--priors", default=None, metavar="FILE.toml",
                   help="priors as TOML: alpha = \"Beta(2, 5)\" or alpha = {dist = \"Beta\", kwargs = {alpha = 2, beta = 5}}")
    p.add_argument("--out", default=None, help="save the fit to this netCDF file")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--prob", type=float, default=intervals.PROB)
    p.add_argument("--json", action="store_true")
    _sampler_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("summary", help="summarise a saved fit")
    p.add_argument("fit")
    p.add_argument("--prob", type=float, default=intervals.PROB)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("predict", help="predict loss from a saved fit")
    p.add_argument("fit")
    p.add_argument("--at", action="append", default=[], metavar="N=..,D=..", help="inputs; repeat for more points")
    p.add_argument("--runs", default=None, metavar="FILE.csv",
                   help="predict at these runs instead; with their loss column, say which fall inside each interval")
    p.add_argument("--prob", type=float, action="append", default=None, help="interval probability; repeatable")
    p.add_argument("--kind", choices=("mean", "observation"), default="mean")
    p.add_argument("--group", default=None, help="for a grouped fit: a group's label (any other label: a new group)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("report", help="fit a CSV of runs (or load FIT.nc) and write an HTML report")
    p.add_argument("data", help="CSV with one row per run, or a saved fit (.nc)")
    p.add_argument("--law", default="chinchilla")
    p.add_argument("--group", default=None)
    p.add_argument("--column", action="append", default=[], metavar="KEY=COL")
    p.add_argument("--at", action="append", default=[], metavar="N=..,D=..", help="extrapolation targets; repeatable")
    p.add_argument("--compute", default=None, metavar="C1,C2,...", help="budgets for the compute-optimal table")
    p.add_argument("--heldout", default=None, metavar="RUNS.csv",
                   help="runs the fit did not see, with their loss: the report checks its intervals on them")
    p.add_argument("--out", required=True, help="folder to write index.html and figures into")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--json", action="store_true")
    _sampler_args(p)
    p.set_defaults(func=cmd_report)

    for name, helptext in (("compare", "fit several laws to a CSV and compare them by PSIS-LOO"),
                           ("backtest", "fit several laws on the smaller runs and score them on the larger")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("data", help="CSV with one row per run")
        p.add_argument("--laws", required=True, metavar="A,B,...", help="law names, e.g. chinchilla,kaplan_nd")
        p.add_argument("--group", default=None)
        p.add_argument("--column", action="append", default=[], metavar="KEY=COL")
        if name == "backtest":
            p.add_argument("--holdout", default="0.2", metavar="H[,H...]",
                           help="fraction of runs with the most compute to hold out, or a FLOPs threshold; "
                                "several for a rolling origin")
            p.add_argument("--by", choices=("C", "N", "D"), default="C", help="order runs by compute, N or D")
        p.add_argument("--json", action="store_true")
        _sampler_args(p)
        p.set_defaults(func=cmd_compare if name == "compare" else cmd_backtest)

    p = sub.add_parser("calibrate", help="check the predictive intervals on held-out runs: coverage against "
                       "nominal probability, PIT, interval score")
    p.add_argument("data", help="CSV of runs (split by --holdout, the lower part fitted), or a saved fit (.nc)")
    p.add_argument("--runs", default=None, metavar="HELDOUT.csv",
                   help="with FIT.nc: runs it did not see, with their loss")
    p.add_argument("--law", default="chinchilla")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of the runs with the most compute to hold out, or a threshold (default 0.2)")
    p.add_argument("--by", choices=("C", "N", "D"), default="C", help="order runs by compute, N or D")
    p.add_argument("--group", default=None)
    p.add_argument("--column", action="append", default=[], metavar="KEY=COL")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="save the reliability diagram and PIT histogram")
    p.add_argument("--json", action="store_true")
    _sampler_args(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("stack", help="stack several laws by leave-future-out scores; predict with the mixture")
    p.add_argument("data", help="CSV with one row per run")
    p.add_argument("--laws", required=True, metavar="A,B,...", help="law names, e.g. chinchilla,kaplan_nd")
    p.add_argument("--holdout", default="0.4,0.3,0.2", metavar="H[,H...]",
                   help="cuts of the leave-future-out scoring: fractions of the runs with the most compute, "
                        "or thresholds")
    p.add_argument("--by", choices=("C", "N", "D"), default="C", help="order runs by compute, N or D")
    p.add_argument("--at", action="append", default=[], metavar="N=..,D=..", help="predict here; repeatable")
    p.add_argument("--prob", type=float, action="append", default=None, help="interval probability; repeatable")
    p.add_argument("--kind", choices=("mean", "observation"), default="mean")
    p.add_argument("--group", default=None)
    p.add_argument("--column", action="append", default=[], metavar="KEY=COL")
    p.add_argument("--json", action="store_true")
    _sampler_args(p)
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("optimal", help="compute-optimal N, D and loss at given budgets, from a saved fit")
    p.add_argument("fit")
    p.add_argument("--compute", required=True, metavar="C1,C2,...", help="budgets in FLOPs, e.g. 1e21,1e23,5.76e23")
    p.add_argument("--prob", type=float, action="append", default=None, help="interval probability; repeatable")
    p.add_argument("--flops", default=None, help="FLOPs formula in N and D (default: the law's, 6 * N * D)")
    p.add_argument("--group", default=None, help="for a grouped fit: one group (default: every group)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_optimal)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "prob", 0) is None:
        args.prob = list(intervals.PROBS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SamplingWarning)
            args.func(args)
    except (CLIError, *USER_ERRORS) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"bayes-scaling: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
