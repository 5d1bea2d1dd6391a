"""Real-data calibration benchmark: do new-run intervals cover larger, held-out runs at their stated rate?

    .venv/bin/python benchmarks/calibration.py [--only NAME ...] [--no-rolling] [--out table.csv] [--write-kappa]

For every dataset with scale inputs and a loss (../shared/data, and the two bundled with the package): fit
the runs with the least compute, predict the rest (the top 20% by compute, 6ND, unless the dataset has its
own split), score the predictive intervals of a new run (`kind="observation"`) against the observed
losses. Where a dataset has at least 80 runs, a rolling origin adds splits holding out 40% and 30%.

Methods, all on the same split and (for ours) the same posterior:
- `no discrepancy`: the fitted law and its noise alone (this package before the discrepancy);
- `default`: the package default, the law plus its extrapolation discrepancy kappa * sigma * distance, with
  kappa's prior estimated by empirical Bayes from the *other* sources' splits (leave one source out), so
  no dataset is scored with a prior that saw it;
- `conformal`: split conformal on absolute log residuals, calibrated on the top 20% (by compute) of the
  training runs predicted by a fit of the rest, around our median;
- `peer`: simple-scaling-laws 0.2.0 (`separable-power`, new-run intervals), when installed
  (`pip install simple-scaling-laws==0.2.0`; see benchmarks/peer.py);
- `stacked` (with `--stack`, main splits of the datasets fitted with `chinchilla`): `bs.stack` of `chinchilla`
  and `kaplan_nd`, weighted by leave-future-out scores inside the training runs, with the shipped kappa.

Columns: n, coverage of the 50% and 90% intervals, median width and mean interval score (Gneiting and
Raftery 2007) of the 90% interval in nats, MdAPE of the median, bias (mean observed - median, nats) and
seconds. Pooled rows weight datasets by their runs. `--write-kappa` estimates kappa's prior from every
source's main split and writes it, with its provenance, to models/observation.toml.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_scaling as bs
from bayes_scaling import intervals
from bayes_scaling.calibrate import calibration, discrepancy_evidence, estimate_kappa, interval_score, kappa_posterior
from bayes_scaling.data import DEFAULT_COLUMNS
from bayes_scaling.result import versions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer import peer_intervals

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Spec:
    """A dataset: how to load it, which law, and how to split it (a fraction by compute, or a mask of the
    held-out rows)."""

    name: str
    source: str
    load: Callable[[], pd.DataFrame]
    law: str = "chinchilla"
    columns: dict[str, str] = field(default_factory=dict)
    heldout: Callable[[pd.DataFrame], np.ndarray] | None = None


def _shared(folder: str, name: str) -> pd.DataFrame:
    path = SHARED / folder / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return pd.read_csv(path)


def _epoch(drop_outliers: bool) -> pd.DataFrame:
    runs = _shared("epoch_chinchilla", "chinchilla_fig4_epoch.csv")
    return runs[~runs["epoch_excluded_top5_loss"]] if drop_outliers else runs


def _gadre(dataset: str) -> pd.DataFrame:
    runs = bs.load_dataset("gadre2024")
    return runs[runs["dataset"] == dataset].reset_index(drop=True)


def _li() -> pd.DataFrame:
    runs = _shared("li2025_misfitting", "misfitting_final_checkpoints.csv")
    return runs.loc[runs.groupby(["n_params", "n_tokens"])["loss"].idxmin()].reset_index(drop=True)  # best LR


def _beck(source: str) -> pd.DataFrame:
    runs = _shared("beck2025_xlstm_isoflops", "xlstm_llama_isoflop_runs.csv")
    keep = (runs["source_pickle"] == source) & runs["finished"] & runs["loss"].notna() & (runs["loss"] < 5)
    return runs[keep].reset_index(drop=True)  # finished, not diverged


def _porian(config: str) -> pd.DataFrame:
    runs = _shared("porian2024_isoflops", "porian2024_isoflop_points.csv")
    return runs[runs["config_id"] == config].reset_index(drop=True)


def _alab(size: float) -> pd.DataFrame:
    runs = _shared("alabdulmohsin2022_revisiting", "revisiting_lm_val_loss.csv")
    return runs[runs["n_params"] == size].reset_index(drop=True)


SPECS: list[Spec] = [
    Spec("epoch_245", "epoch", lambda: _epoch(False)),
    Spec("epoch_240", "epoch", lambda: _epoch(True)),
    *(
        Spec(f"gadre_{d}", "gadre", lambda d=d: _gadre(d), heldout=lambda f: f["n_params"].to_numpy() >= 5e8)
        for d in ("c4_original", "rpj", "rw_original")
    ),
    Spec("li2025", "li", _li),
    *(
        Spec(f"beck_{s.removeprefix('isoflop_')}", "beck", lambda s=s: _beck(s))
        for s in ("isoflop_llama_ctx2048", "isoflop_llama_ctx8192", "isoflop_llama_ctx16384", "isoflop_mlstm_ctx16384")
    ),
    *(
        Spec(f"porian_{c.split('|')[0]}_{'cosine' if 'chinchilla' in c else 'const'}", "porian", lambda c=c: _porian(c))
        for c in (
            "rw|base|short|chinchilla|standard|val",
            "owt2|base|short|chinchilla|standard|val",
            "rw|tuned|short|const|standard|val",
            "owt2|tuned|short|const|standard|val",
        )
    ),
    Spec(
        "muennighoff_data_constrained",
        "muennighoff",
        lambda: bs.load_dataset("muennighoff2023"),
        law="data_constrained",
    ),
    Spec("muennighoff_chinchilla", "muennighoff", lambda: bs.load_dataset("muennighoff2023")),
    *(
        Spec(
            f"alabdulmohsin_{size:.3g}",
            "alabdulmohsin",
            lambda size=size: _alab(size),
            law="power_irreducible",
            columns={"x": "n_tokens"},
            heldout=lambda f: f["is_train_split"].to_numpy() == 0,
        )
        for size in (1.68e7, 1.34e8, 2.62e8, 4.53e8, 1.07e9)
    ),
]


def ordering(spec: Spec, runs: pd.DataFrame) -> np.ndarray:
    """Each run's place in the future: its compute 6ND, or its single input."""
    law = bs.load_law(spec.law)
    columns = {**DEFAULT_COLUMNS, **spec.columns}
    if {"N", "D"} <= set(law.inputs):
        return 6 * runs[columns["N"]].to_numpy(float) * runs[columns["D"]].to_numpy(float)
    (name,) = law.inputs
    return runs[columns[name]].to_numpy(float)


def top(order: np.ndarray, fraction: float) -> np.ndarray:
    """The ``fraction`` of runs furthest in the future (ties at the cut stay in the fit)."""
    cut = np.sort(order)[len(order) - int(np.ceil(fraction * len(order))) - 1]
    return order > cut


def inner_fit(spec: Spec, train: pd.DataFrame, settings: dict) -> tuple[bs.ScalingFit, pd.DataFrame]:
    """A fit of the training runs but their top 20% (the law without discrepancy), and that top 20%: the
    training runs' own backtest, which conformal and the self-backtested kappa learn from."""
    held = top(ordering(spec, train), 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inner = bs.fit(train[~held], law=spec.law, columns=spec.columns or None, discrepancy=False, **settings)
    return inner, train[held]


def conformal(
    fit: bs.ScalingFit, inner: bs.ScalingFit, beyond: pd.DataFrame, test: pd.DataFrame, probs=intervals.PROBS
) -> dict[str, np.ndarray]:
    """Split conformal on |log residuals|, calibrated on the runs ``beyond`` the ``inner`` fit (the training
    runs' top 20%, :func:`inner_fit`), around the median of ``fit`` (the law without discrepancy)."""
    center = inner.predict(beyond, prob=0.5)["median"].to_numpy()
    residuals = np.sort(np.abs(np.log(beyond[inner.runs.columns["loss"]].to_numpy(float)) - np.log(center)))
    median = fit.predict(test, prob=0.5)["median"].to_numpy()
    out = {"median": median}
    for p in probs:
        k = min(int(np.ceil((len(residuals) + 1) * p)), len(residuals))  # beyond n: the largest residual
        q = residuals[k - 1]
        out[f"{intervals.label(p)}_lower"], out[f"{intervals.label(p)}_upper"] = median * np.exp(-q), median * np.exp(q)
    return out


def summarise(bands: dict[str, np.ndarray], observed: np.ndarray) -> dict[str, float]:
    """The table's columns from interval bounds (for methods that give bounds, not draws)."""
    inside = intervals.inside(observed, bands, intervals.PROBS)
    lo, hi = bands["eti90_lower"], bands["eti90_upper"]
    return {
        "n": len(observed),
        "coverage_50": float(np.mean(inside["inside_eti50"])),
        "coverage_90": float(np.mean(inside["inside_eti90"])),
        "width_90": float(np.median(hi - lo)),
        "interval_score_90": float(np.mean(interval_score(lo, hi, observed, 0.9))),
        "mdape": float(np.median(np.abs(bands["median"] / observed - 1))),
        "bias": float(np.mean(observed - bands["median"])),
    }


def splits(spec: Spec, runs: pd.DataFrame, rolling: bool) -> list[tuple[str, np.ndarray]]:
    """(label, held-out mask): the main split, then the rolling origin."""
    if spec.heldout is not None:
        return [("main", spec.heldout(runs))]
    order = ordering(spec, runs)
    out = [("main", top(order, 0.2))]
    if rolling and len(runs) >= 80:
        out += [(f"roll{h:g}", top(order, h)) for h in (0.4, 0.3)]
    return out


def run(
    specs: list[Spec],
    *,
    rolling: bool = True,
    settings: dict | None = None,
    peer: bool = True,
    stacked: bool = False,
    log=print,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Fit and score every split; returns the rows (without the `default` method, which needs every
    source's evidence) and the discrepancy evidence of each main split. Fits and predictions are kept
    on the rows' ``_fit`` / ``_test`` columns for :func:`add_default`."""
    settings = {"seed": 1, "progressbar": False, **(settings or {})}
    rows, evidence = [], {}
    for spec in specs:
        try:
            runs = spec.load()
        except FileNotFoundError as err:
            log(f"skip {spec.name}: {err} not found")
            continue
        for label, held in splits(spec, runs, rolling):
            train, test = runs[~held], runs[held]
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = bs.fit(train, law=spec.law, columns=spec.columns or None, discrepancy=False, **settings)
            seconds = time.perf_counter() - start
            base = {"dataset": spec.name, "source": spec.source, "split": label}
            summary = calibration(fit, test, seed=0).summary
            start = time.perf_counter()
            inner, beyond = inner_fit(spec, train, settings)
            inner_seconds = time.perf_counter() - start
            own = discrepancy_evidence(inner, beyond, seed=0)
            rows.append(
                {**base, "method": "no discrepancy", **summary, "seconds": seconds, "_fit": fit, "_test": test}
                | {"_own": own, "_inner_seconds": inner_seconds}
            )
            if label == "main":
                evidence[spec.name] = discrepancy_evidence(fit, test, seed=0)
            observed = fit.checked_loss(test)
            start = time.perf_counter()
            bands = conformal(fit, inner, beyond, test)
            rows.append(
                {
                    **base,
                    "method": "conformal",
                    **summarise(bands, observed),
                    "seconds": seconds + inner_seconds + time.perf_counter() - start,
                }
            )
            if peer:
                inputs = {k: {**DEFAULT_COLUMNS, **spec.columns}[k] for k in fit.law.inputs if k != "U"}
                start = time.perf_counter()
                found = peer_intervals(train, test, inputs=inputs, loss=fit.runs.columns["loss"])
                if found is not None:
                    rows.append(
                        {**base, "method": "peer", **summarise(found, observed), "seconds": time.perf_counter() - start}
                    )
            if stacked and label == "main" and spec.law == "chinchilla":
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mix = bs.stack(
                        train,
                        laws=["chinchilla", "kaplan_nd"],
                        columns=spec.columns or None,
                        **{k: v for k, v in settings.items() if k != "progressbar"},
                        progressbar=False,
                    )
                rows.append(
                    {
                        **base,
                        "method": "stacked",
                        **calibration(mix, test, seed=0).summary,
                        "seconds": time.perf_counter() - start,
                        "weight_kaplan_nd": mix.weights["kaplan_nd"],
                    }
                )
            d = fit.diagnostics
            log(
                f"{spec.name:32s} {label:8s} fit {len(train):4d} score {len(test):3d}  {seconds:5.1f}s  "
                f"divergences {d['divergences']}  R-hat {d['max_r_hat']:.3f}"
            )
    return pd.DataFrame(rows), evidence


def add_default(rows: pd.DataFrame, evidence: dict[str, np.ndarray]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The `default` rows: each split's fit with kappa's prior estimated from the other sources' evidence;
    and the `self-backtested` rows: that prior updated by the split's own training runs (their top 20%
    against a fit of the rest, :func:`inner_fit`) with ``calibrate.kappa_posterior``."""
    source_of = dict(zip(rows["dataset"], rows["source"], strict=False))
    private = ["_fit", "_test", "_own", "_inner_seconds"]  # what the splits carry for this step only
    priors, new = {}, []
    for source in sorted(set(rows["source"])):
        others = {k: v for k, v in evidence.items() if source_of[k] != source}
        priors[source] = estimate_kappa(others).prior if others else None
    for _, row in rows[rows["method"] == "no discrepancy"].iterrows():
        prior = priors[row["source"]]
        if prior is None:
            continue
        kept = row.drop(private).to_dict()
        for method, kappa, extra in (
            ("default", prior, 0.0),
            ("self-backtested", kappa_posterior(row["_own"], prior), row["_inner_seconds"]),
        ):
            summary = calibration(row["_fit"].with_discrepancy(kappa, seed=1), row["_test"], seed=0).summary
            new.append({**kept, "method": method, **summary, "seconds": row["seconds"] + extra})
    table = pd.concat([rows.drop(columns=private, errors="ignore"), pd.DataFrame(new)], ignore_index=True)
    return table, {k: str(v) for k, v in priors.items()}


COLUMNS = ["n", "coverage_50", "coverage_90", "width_90", "interval_score_90", "mdape", "bias", "seconds"]
METHODS = ["no discrepancy", "default", "self-backtested", "conformal", "peer", "stacked"]


def pooled(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, coverage pooled over runs, the lowest 90% coverage of any source, the median MdAPE."""
    out = {}
    for method, part in table.groupby("method"):
        w = part["n"]
        by_source = part.groupby("source").apply(lambda g: np.average(g["coverage_90"], weights=g["n"]))
        out[method] = {
            "n": w.sum(),
            "coverage_50": np.average(part["coverage_50"], weights=w),
            "coverage_90": np.average(part["coverage_90"], weights=w),
            "lowest source coverage_90": by_source.min(),
            "median mdape": part["mdape"].median(),
        }
    return pd.DataFrame(out).T.reindex([m for m in METHODS if m in out])


def markdown(table: pd.DataFrame) -> str:
    """The per-dataset table as Markdown (methods side by side within a dataset)."""
    lines = [
        "| dataset | split | method | n | 50% covers | 90% covers | 90% width | interval score | MdAPE | bias | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {m: i for i, m in enumerate(METHODS)}
    for _, r in table.sort_values(
        ["dataset", "split", "method"], key=lambda c: c.map(order) if c.name == "method" else c
    ).iterrows():
        lines.append(
            f"| {r['dataset']} | {r['split']} | {r['method']} | {r['n']:.0f} | {r['coverage_50']:.2f} | "
            f"{r['coverage_90']:.2f} | {r['width_90']:.3g} | {r['interval_score_90']:.3g} | "
            f"{100 * r['mdape']:.2f}% | {r['bias']:+.3f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def readme_table(table: pd.DataFrame) -> str:
    """Main splits, one row per dataset: the default, with the others in brackets."""
    main = table[table["split"] == "main"].set_index(["dataset", "method"])
    others = [m for m in ("no discrepancy", "conformal", "peer") if m in set(table["method"])]  # stacked: not all rows
    lines = [
        "| dataset | n | 50% covers | 90% covers | 90% width | interval score | MdAPE |",
        "|---|---|---|---|---|---|---|",
        f"| | | default ({' / '.join(others)}) | | | | |",
    ]

    def cell(name: str, column: str, fmt: str) -> str:
        rest = " / ".join(format(main.loc[(name, m), column], fmt) for m in others if (name, m) in main.index)
        return f"{format(main.loc[(name, 'default'), column], fmt)} ({rest})"

    for name in dict.fromkeys(main.index.get_level_values(0)):
        lines.append(
            f"| {name} | {main.loc[(name, 'default'), 'n']:.0f} | {cell(name, 'coverage_50', '.2f')} | "
            f"{cell(name, 'coverage_90', '.2f')} | {cell(name, 'width_90', '.3g')} | "
            f"{cell(name, 'interval_score_90', '.3g')} "
            f"| {100 * main.loc[(name, 'default'), 'mdape']:.2f}% |"
        )
    return "\n".join(lines)


def write_kappa(evidence: dict[str, np.ndarray], path: Path) -> str:
    """Estimate kappa's prior from every dataset's evidence and write it, with its provenance, to ``path``."""
    estimate = estimate_kappa(evidence)
    q = json.dumps  # a JSON string is a TOML basic string
    provenance = {
        "method": "log kappa ~ Normal(mu, s) across datasets, flat prior on mu, HalfNormal(1) on s; each dataset's "
        "likelihood of kappa from the tilt of its held-out runs (bayes_scaling.calibrate."
        "discrepancy_evidence); the prior is the predictive of kappa for a new dataset",
        "population": f"median kappa {np.exp(estimate.mu):.2f}, spread of log kappa {estimate.s:.2f}",
        "split": "fit the runs with the least compute (6ND), hold out the top 20% (Gadre: the 1.4B and 6.9B runs; "
        "Alabdulmohsin: its own split)",
        "command": "python benchmarks/calibration.py --write-kappa",
        "date": date.today().isoformat(),
        "bayes_scaling": versions()["bayes-scaling"],
    }
    lines = [line for line in path.read_text().splitlines() if line.startswith("#")]
    lines += [
        "",
        "[kappa]",
        'dist = "LogNormal"',
        f"kwargs = {{ mu = {estimate.prior.kwargs['mu']}, sigma = {estimate.prior.kwargs['sigma']} }}",
        "",
        "[provenance]",
        *(f"{k} = {q(v)}" for k, v in provenance.items()),
        f"datasets = {q(sorted(evidence))}",
    ]
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())  # what the package will read
    return str(estimate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="dataset names (prefixes) to run")
    parser.add_argument("--no-rolling", action="store_true", help="main splits only")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument(
        "--stack", action="store_true", help="add leave-future-out stacking of chinchilla and kaplan_nd"
    )
    parser.add_argument("--out", type=Path, help="write the per-split table as CSV")
    parser.add_argument("--write-kappa", action="store_true", help="write kappa's prior to models/observation.toml")
    args = parser.parse_args(argv)
    specs = [s for s in SPECS if not args.only or any(s.name.startswith(o) for o in args.only)]
    start = time.perf_counter()
    rows, evidence = run(
        specs,
        rolling=not args.no_rolling,
        peer=not args.no_peer,
        stacked=args.stack,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    table, priors = add_default(rows, evidence)
    print(f"kappa priors, each estimated without its own source: {priors}\n")
    print(markdown(table))
    print("\nFor README.md (main splits):\n" + readme_table(table))
    main_splits = table["split"] == "main"
    for label, part in (("main splits", table[main_splits]), ("rolling origin", table[~main_splits])):
        if len(part):
            print(f"\nPooled over {label}:\n" + pooled(part).to_string(float_format="{:.3f}".format))
    if args.out:
        table.to_csv(args.out, index=False)
    if args.write_kappa:
        print("\nwrote models/observation.toml:", write_kappa(evidence, ROOT / "models" / "observation.toml"))
    print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
