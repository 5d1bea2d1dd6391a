"""One self-contained HTML report of a fit: figures, tables, diagnostics, provenance."""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import intervals, plots
from .result import MAX_RHAT, MIN_ESS, ScalingFit

__all__ = ["write_report"]

#: A file every report folder holds: overwrite=True replaces only folders that have it.
_MARKER = ".bayes-scaling-report"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
.bad { background: #fde2e2; }
figure { display: inline-block; margin: 0.5em; }
img { max-width: 520px; border: 1px solid #eee; }
code, pre { background: #f6f6f6; padding: 0.1em 0.3em; }
"""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.4g}", border=0)


def _figures(fit: ScalingFit, folder: Path, compute: Sequence[float], cal: Any = None) -> list[tuple[str, str]]:
    """Draw the figures into ``folder``; returns (file name, caption) pairs."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    inputs = set(fit.law.inputs)
    drawings = [(plots.plot_loss, {"x": x}, f"Loss against {x}, with the extrapolated region shaded")
                for x in (["N", "C"] if {"N", "D"} <= inputs else list(fit.law.inputs))]
    if {"N", "D"} <= inputs and fit.law.compute is not None:
        drawings.append((plots.plot_frontier, {}, "Compute-optimal N and D against compute, published allocations"))
        drawings.append((plots.plot_isoflop, {"C": list(compute)[:3] or [1e21, 1e23]}, "IsoFLOP profiles"))
    drawings.append((plots.plot_exponents, {}, "Joint posterior of the exponents"))
    if cal is not None:
        drawings += [(lambda _, ax: plots.plot_calibration(cal, ax=ax), {}, "Held-out runs: coverage of each interval"),
                     (lambda _, ax: plots.plot_pit(cal, ax=ax), {}, "Held-out runs: PIT histogram")]
    out = []
    for i, (draw, kwargs, caption) in enumerate(drawings):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        try:
            draw(fit, ax=ax, **kwargs)
        except ValueError:
            plt.close(fig)  # not drawable for this law (e.g. exponents that vary by group)
            continue
        name = f"figure{i + 1}.png"
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        out.append((name, caption))
    return out


def write_report(
    fit: ScalingFit,
    out: str | Path,
    *,
    at: Sequence[Mapping[str, float]] = (),
    compute: Sequence[float] = (),
    heldout: pd.DataFrame | None = None,
    command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out/index.html`` (and its figures): parameter table, extrapolations at ``at``,
    compute-optimal allocations at ``compute``, the calibration on ``heldout`` runs (runs the fit did not
    see, with their loss), diagnostics, the command and package versions.

    The folder is built aside and moved into place at the end; an existing ``out`` is replaced only
    with ``overwrite=True``, and only if it is a report folder written here (it holds ``.bayes-scaling-report``).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{str(out)!r} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if out.exists() and not (out / _MARKER).is_file():
        raise FileExistsError(f"{str(out)!r} exists and is not a report written here; not replacing it")
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise ValueError(f"the report folder {str(out)!r} contains the current directory; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a report is for reading
    cal = None
    if heldout is not None:
        from .calibration import calibration

        cal = calibration(fit, heldout, seed=0)
    try:
        figures = _figures(fit, tmp, compute, cal)
        d = fit.diagnostics
        bad = {"divergences": d["divergences"] > 0, "max_r_hat": d["max_r_hat"] > MAX_RHAT,
               "min_ess_bulk": d["min_ess_bulk"] < MIN_ESS, "min_ess_tail": d["min_ess_tail"] < MIN_ESS}
        diag = "".join(
            f"<tr{' class=\"bad\"' if bad[k] else ''}><th>{html.escape(k)}</th><td>{v:.4g}</td></tr>"
            for k, v in d.items()
        )
        grouped = fit.runs.group is not None
        sections = [
            f"<h1>{html.escape(fit.law.title)}</h1>",
            f"<p><code>{html.escape(str(fit.law.formula))}</code> &mdash; {html.escape(fit.law.citation)}</p>",
            f"<p>{len(fit.runs)} runs" + (f", grouped by <code>{html.escape(fit.runs.group_column)}</code> "
                                          f"({', '.join(map(html.escape, fit.runs.groups))})" if grouped else "")
            + f"; likelihood {fit.likelihood}; sampler {fit.settings['sampler']}, {fit.settings['chains']} chains x "
              f"{fit.settings['draws']} draws. All intervals are equal-tailed.</p>",
            "<h2>Diagnostics</h2>",
            f"<table>{diag}</table><p>Red: divergences, R-hat &gt; {MAX_RHAT} or ESS &lt; {MIN_ESS}.</p>",
            "<h2>Parameters (90% intervals)</h2>", _table(fit.summary(prob=intervals.PROB)),
        ]
        if at:
            groups = list(fit.runs.groups) if grouped else [None]
            rows = [fit.predict(kind=kind, prob=intervals.PROBS, **point, **({} if g is None else {"group": g}))
                    .assign(kind=kind) for point in at for g in groups for kind in ("mean", "observation")]
            sections += ["<h2>Extrapolation</h2><p><i>mean</i>: the law's curve; <i>observation</i>: a new run's "
                         "loss (adds the noise).</p>", _table(pd.concat(rows, ignore_index=True))]
        if cal is not None:
            summary = cal.summary
            outside = cal.points[~cal.points["inside_eti90"]].drop(columns=["inside_eti50", "inside_eti90"])
            sections += [
                "<h2>Held-out runs</h2>",
                f"<p>{summary['n']:.0f} runs the fit did not see: {summary['coverage_50']:.0%} inside their 50% interval and "
                f"{summary['coverage_90']:.0%} inside their 90% interval of a new run (calibrated: 50% and 90%); "
                f"median 90% width {summary['width_90']:.3g}, interval score {summary['interval_score_90']:.3g}, MdAPE "
                f"{summary['mdape']:.2%}, bias (observed - median) {summary['bias']:+.3g}.</p>",
                _table(cal.curve),
                f"<p>{len(outside)} run(s) outside their 90% interval" + (":</p>" + _table(outside) if len(outside)
                                                                          else ".</p>"),
            ]
        if compute:
            sections += ["<h2>Compute-optimal allocation (90% intervals)</h2>",
                         _table(fit.compute_optimal(list(compute), prob=intervals.PROB))]
        sections.append("<h2>Figures</h2>" + "".join(
            f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption>'
            "</figure>" for name, caption in figures))
        versions = json.loads(fit.tree.attrs["versions"])
        sections += [
            "<h2>Provenance</h2>",
            f"<pre>{html.escape(command or '(made from Python)')}</pre>",
            "<p>" + ", ".join(f"{html.escape(k)} {html.escape(v)}" for k, v in versions.items())
            + f"; fitted {html.escape(fit.tree.attrs['created_at'])}; seed {fit.settings['seed']}.</p>",
        ]
        page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(fit.law.name)} "
                f"report</title><style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>")
        (tmp / "index.html").write_text(page)
        (tmp / _MARKER).write_text("written by bayes_scaling.report.write_report; --overwrite may replace this folder\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out / "index.html"
