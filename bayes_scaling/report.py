"""One self-contained HTML report of a fit that decides a budget: the compute-optimal allocations first,
then the checks behind them (posterior predictive, residuals, LOO-PIT, Pareto k, rank plots), the figures,
the parameters and the provenance. Figures are embedded; no file but the page is written."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import intervals, plots
from .errors import OptionError, OutputExistsError
from .result import MAX_RHAT, MIN_ESS, ScalingFit

__all__ = ["FAR", "decision_table", "write_report"]

#: A budget more than this many times the largest run's compute is flagged as a far extrapolation.
FAR = 100.0
#: Written into every report: overwrite=True replaces only a file that carries it.
_GENERATOR = '<meta name="generator" content="bayes_scaling report">'

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1.5em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.85em; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
.bad { background: #fde2e2; } .warn { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
.answer { background: #eef6ee; border-left: 4px solid #3a8a3a; padding: 0.4em 0.8em; }
figure { display: inline-block; width: 48%; margin: 0.5%; vertical-align: top; }
img { width: 100%; border: 1px solid #eee; } figcaption { font-size: 0.85em; color: #555; }
code, pre { background: #f6f6f6; padding: 0.1em 0.3em; white-space: pre-wrap; word-break: break-all; }
"""


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _interval(row: Mapping[str, Any], name: str, prob: float = intervals.PROB) -> str:
    lab = intervals.label(prob)
    return (
        f"{_fmt(row[f'{name}_median'])} ({_fmt(row[f'{name}_{lab}_lower'])}&ndash;{_fmt(row[f'{name}_{lab}_upper'])})"
    )


def _largest_run(fit: ScalingFit) -> float:
    """The compute of the fit's largest run, in FLOPs."""
    return float(fit.law.compute_flops(**fit.runs.inputs).max())


def decision_table(
    fit: ScalingFit, budgets: Sequence[float], *, prob: float = intervals.PROB
) -> tuple[pd.DataFrame, list[str]]:
    """For each budget (and group): the compute-optimal N and D, tokens per parameter and the loss there,
    as medians with their ``prob`` interval, how many times the largest run's compute the budget is, and
    the allocation's distance (decades) from the runs. Returns the table and warnings, one per kind: budgets
    beyond :data:`FAR` times the largest run, and optima outside the observed range of N or of D."""
    table = fit.compute_optimal(list(budgets), prob=prob)
    largest = _largest_run(fit)
    ranges = {k: (fit.runs.inputs[k].min(), fit.runs.inputs[k].max()) for k in ("N", "D")}
    rows: list[dict[str, Any]] = []
    flagged: dict[str, list[str]] = {"far": [], "N": [], "D": []}
    for _, row in table.iterrows():
        times = row["C"] / largest
        at = {"N": np.array([row["N_opt_median"]]), "D": np.array([row["D_opt_median"]])}
        if "U" in fit.law.inputs:
            at["U"] = at["D"]
        codes = None if "group" not in row else fit._group_codes([row["group"]])
        where = f"{row['C']:.3g}" + (f" ({row['group']})" if "group" in row else "")
        notes = []
        if times > FAR:
            notes.append(f"{times:,.0f}x beyond")
            flagged["far"].append(where)
        for k in ("N", "D"):
            value = row[f"{k}_opt_median"]
            if not ranges[k][0] <= value <= ranges[k][1]:
                notes.append(f"{k} {'above' if value > ranges[k][1] else 'below'} the runs")
                flagged[k].append(where)
        rows.append(
            {
                "budget C (FLOPs)": _fmt(row["C"]),
                **({"group": row["group"]} if "group" in row else {}),
                "x largest run": f"{times:,.0f}" if times >= 10 else f"{times:.2g}",
                "N_opt": _interval(row, "N_opt"),
                "D_opt": _interval(row, "D_opt"),
                "tokens / param": _interval(row, "tokens_per_param"),
                "loss": _interval(row, "loss"),
                "distance (decades)": f"{float(fit.distance(at, codes)[0]):.2f}",
                "note": "; ".join(notes) or "within the runs' range",
            }
        )
    total, warnings = len(rows), []
    if flagged["far"]:
        warnings.append(
            f"{len(flagged['far'])} of {total} budgets lie more than {FAR:g}x beyond the largest run "
            f"({largest:.3g} FLOPs): {', '.join(flagged['far'])}."
        )
    for k, what in (("N", "model size"), ("D", "token count")):
        if flagged[k]:
            lo, hi = ranges[k]
            warnings.append(
                f"At {len(flagged[k])} of {total} budgets the optimal {what} {k} lies outside the runs' "
                f"{_fmt(lo)}-{_fmt(hi)}: {', '.join(flagged[k])}."
            )
    if warnings:
        warnings.append(
            "Those allocations are extrapolations: their intervals carry the law's discrepancy at that "
            "distance (the distance column), not certainty."
        )
    return pd.DataFrame(rows), warnings


def _table(frame: pd.DataFrame, *, index: bool = False) -> str:
    """A table; numbers with 4 significant digits, text left-aligned."""
    return frame.to_html(index=index, border=0, escape=False, float_format=lambda v: f"{v:.4g}")


def _png(draw: Callable[[Any], Any], size: tuple[float, float] = (6.4, 4.4)) -> str | None:
    """Draw on a fresh Figure (no pyplot, no backend switched) and return it as a data URI; None if the
    figure does not apply to this fit."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    try:
        out = draw(fig.subplots())
    except OptionError:
        return None  # not drawable for this law (e.g. exponents that vary by group)
    fig = out if isinstance(out, Figure) else fig
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figures(items: Sequence[tuple[str, Callable[[Any], Any]]]) -> str:
    out = []
    for caption, draw in items:
        uri = _png(draw)
        if uri is not None:
            out.append(
                f'<figure><img src="{uri}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    return "".join(out)


def _target(out: Path) -> Path:
    """The HTML file: ``out`` itself if it ends in .html, else ``out/index.html``."""
    return out if out.suffix.lower() in (".html", ".htm") else out / "index.html"


def write_report(
    fit: ScalingFit,
    out: str | Path,
    *,
    at: Sequence[Mapping[str, Any]] = (),
    compute: Sequence[float] = (),
    heldout: pd.DataFrame | None = None,
    command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one self-contained HTML report (figures embedded) to ``out`` (a ``.html`` path, or a folder
    that gets ``index.html``) and return its path.

    It opens with the decision: the compute-optimal allocation at each budget in ``compute`` (default:
    10, 100 and 1000 times the largest run) with warnings where it extrapolates far; then extrapolations
    at the points ``at``, the calibration on ``heldout`` runs (runs the fit did not see, with their loss),
    the checks (diagnostics, posterior predictive, residuals, LOO-PIT, Pareto k, rank plots), figures,
    parameters and provenance. An existing file is replaced only with ``overwrite=True``, and only if a
    report written here; the page is written aside and moved into place.
    """
    if not isinstance(fit, ScalingFit):
        raise OptionError(f"write_report needs a ScalingFit, got {type(fit).__name__}")
    if not isinstance(out, str | os.PathLike) or "\0" in str(out):
        raise OptionError(f"out must be a path to a .html file or a folder, got {out!r:.80}")
    if command is not None and not isinstance(command, str):
        raise OptionError(f"command must be text (the command line that made the fit), got {command!r:.80}")
    at = () if at is None else [at] if isinstance(at, Mapping) else at
    if isinstance(at, str) or not isinstance(at, Sequence) or not all(isinstance(point, Mapping) for point in at):
        raise OptionError(f"at must be points, each a mapping of input to value like {{'N': 7e10}}, got {at!r:.80}")
    compute = () if compute is None else [compute] if isinstance(compute, int | float) else compute
    target = _target(Path(out))
    if target.exists() and not target.is_file():
        raise OutputExistsError(f"{str(target)!r} is not a file; not replacing it")
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{str(target)!r} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if target.exists() and _GENERATOR not in target.read_text(errors="replace")[:2000]:
        raise OutputExistsError(f"{str(target)!r} exists and is not a report written here; not replacing it")
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputExistsError(f"cannot write {str(target)!r}: {str(folder)!r} is a file, not a folder")
    page = _page(fit, at=at, compute=compute, heldout=heldout, command=command)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a report is for reading
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _page(
    fit: ScalingFit,
    *,
    at: Sequence[Mapping[str, Any]],
    compute: Sequence[float],
    heldout: pd.DataFrame | None,
    command: str | None,
) -> str:
    esc = html.escape
    grouped = fit.runs.group is not None
    has_nd = {"N", "D"} <= set(fit.law.inputs) and fit.law.compute is not None and fit.law.target == "positive"
    d = fit.diagnostics
    problems = fit.problems
    sections = [
        f"<h1>{esc(fit.law.title)}</h1>",
        f"<p>{len(fit.runs)} runs"
        + (f", {len(fit.runs.groups)} groups by <code>{esc(str(fit.runs.group_column))}</code>" if grouped else "")
        + f"; <code>{esc(str(fit.law.formula))}</code> ({esc(fit.law.citation)}). Intervals are 90% equal-tailed; "
        "beyond the runs they carry the law's extrapolation discrepancy.</p>",
    ]
    if problems:
        sections.append(
            f'<p class="warn">The sampler flagged this posterior: {esc("; ".join(problems))}. '
            "Treat every number below with care.</p>"
        )
    if has_nd:
        largest = _largest_run(fit)
        budgets = list(compute) or [10 * largest, 100 * largest, 1000 * largest]
        table, warns = decision_table(fit, budgets)
        sections += [
            "<h2>Decision: compute-optimal allocation per budget</h2>",
            '<p class="answer">For each budget: the parameters N and tokens D that minimise the loss, and '
            f"the loss there. The largest fitted run used {largest:.3g} FLOPs.</p>",
            _table(table),
        ]
        if warns:
            sections.append(f'<p class="warn">{"<br>".join(esc(w) for w in warns)}</p>')
    if at:
        labels = list(fit.runs.groups) if grouped else [None]
        rows = [
            fit.predict(kind=kind, prob=intervals.PROBS, group=g, **point).assign(kind=kind)
            for point in at
            for g in labels
            for kind in ("mean", "observation")
        ]
        sections += [
            "<h2>Extrapolation</h2><p><i>mean</i>: the expected loss of a run there; <i>observation</i>: a "
            "new run's loss (adds the noise). <i>distance</i>: decades beyond the fitted runs.</p>",
            _table(pd.concat(rows, ignore_index=True)),
        ]
    cal = None
    if heldout is not None:
        from .calibrate import calibration

        cal = calibration(fit, heldout, seed=0)
        s = cal.summary
        outside = cal.points[~cal.points["inside_eti90"]].drop(columns=["inside_eti50", "inside_eti90"])
        sections += [
            "<h2>Held-out runs</h2>",
            f"<p>{s['n']:.0f} runs the fit did not see: {s['coverage_50']:.0%} inside their 50% interval and "
            f"{s['coverage_90']:.0%} inside their 90% interval of a new run (calibrated: 50% and 90%); median 90% "
            f"width {s['width_90']:.3g}, interval score {s['interval_score_90']:.3g}, MdAPE {s['mdape']:.2%}, bias "
            f"(observed - median) {s['bias']:+.3g}.</p>",
            _table(cal.curve, index=True),
            f"<p>{len(outside)} run(s) outside their 90% interval"
            + (":</p>" + _table(outside) if len(outside) else ".</p>"),
            _figures(
                [
                    ("Coverage of each interval on the held-out runs", lambda ax: plots.plot_calibration(cal, ax=ax)),
                    ("PIT of the held-out runs", lambda ax: plots.plot_pit(cal, ax=ax)),
                ]
            ),
        ]
    main: list[tuple[str, Callable[[Any], Any]]] = [
        (
            f"Loss against {x}, extrapolated region shaded" + ("; held-out runs as crosses" if cal else ""),
            partial(_loss_with_heldout, fit, x, cal=cal),
        )
        for x in (["C", "N"] if has_nd else list(fit.law.scaled_inputs))
    ]
    if has_nd:
        main.append(
            (
                "Compute-optimal N (solid) and D (dashed) against compute; stars: published allocations",
                lambda ax: plots.plot_frontier(fit, ax=ax),
            )
        )
    sections += ["<h2>Figures</h2>", _figures(main)]
    if has_nd:
        iso = [
            (
                "IsoFLOP profiles" + (f" ({g})" if g else ""),
                lambda ax, g=g: plots.plot_isoflop(fit, budgets[:3], ax=ax, group=g),
            )
            for g in (fit.runs.groups if grouped else [None])
        ]
        sections.append(_figures(iso))
    diag = "".join(
        f"<tr{' class="bad"' if bad else ''}><th class='text'>{esc(k)}</th><td>{v:.4g}</td></tr>"
        for k, (v, bad) in _marked(d).items()
    )
    checks = [
        ("Posterior predictive check of the fitted runs", lambda ax: plots.plot_ppc(fit, ax=ax)),
        ("Residuals against compute", lambda ax: plots.plot_residuals(fit, ax=ax)),
        (
            "LOO-PIT of the fitted runs (flat: the observation model describes them)",
            lambda ax: plots.plot_loo_pit(fit, ax=ax),
        ),
        ("PSIS-LOO Pareto k of each run", lambda ax: plots.plot_pareto_k(fit, ax=ax)),
        ("Rank plots of the law's parameters (flat in every chain: the chains agree)", lambda ax: plots.plot_rank(fit)),
    ]
    sections += [
        "<h2>Checks</h2>",
        f"<table>{diag}</table>",
        f"<p>Red: divergences, R-hat &gt; {MAX_RHAT} or ESS &lt; {MIN_ESS}.</p>",
        _figures(checks),
    ]
    summary = fit.summary(prob=intervals.PROB)
    sections += ["<h2>Parameters (90% intervals)</h2>", _table(summary.round(6), index=True)]
    versions = json.loads(fit.tree.attrs["versions"])
    s = fit.settings
    sections += [
        "<h2>Provenance</h2>",
        f"<pre>{esc(command or '(made from Python)')}</pre>",
        f"<p>Sampler {esc(str(s['sampler']))}, {s['chains']} chains x {s['draws']} draws after {s['tune']} tuning "
        f"steps, seed {s['seed']}; likelihood {esc(fit.likelihood)}; fitted {esc(fit.tree.attrs['created_at'])}.</p>",
        "<p>" + ", ".join(f"{esc(k)} {esc(v)}" for k, v in versions.items()) + ".</p>",
    ]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{_GENERATOR}'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(fit.law.name)} report</title><style>{_STYLE}</style></head><body>{''.join(sections)}"
        "</body></html>"
    )


def _marked(d: Mapping[str, float]) -> dict[str, tuple[float, bool]]:
    """Each diagnostic with whether it fails its check."""
    return {
        "divergences": (d["divergences"], d["divergences"] > 0),
        "max_r_hat": (d["max_r_hat"], d["max_r_hat"] > MAX_RHAT),
        "min_ess_bulk": (d["min_ess_bulk"], d["min_ess_bulk"] < MIN_ESS),
        "min_ess_tail": (d["min_ess_tail"], d["min_ess_tail"] < MIN_ESS),
    }


def _loss_with_heldout(fit: ScalingFit, x: str, ax: Any, cal: Any) -> Any:
    plots.plot_loss(fit, x, ax=ax)
    if cal is not None:
        points = cal.points
        xs = points[x] if x in points else fit.law.compute_flops(**{k: points[k].to_numpy() for k in fit.law.inputs})
        ax.scatter(xs, points["observed"], marker="x", s=30, color="k", zorder=5, label="held out")
        ax.legend(fontsize=8)
    return ax
