"""Learning curves: predict the final loss of Li et al. (2025)'s runs from the first 30% of their
checkpoints, with intervals.

Li, Kudugunta, Zettlemoyer (2025), (Mis)Fitting Scaling Laws, ICLR 2025 (github.com/hadasah/scaling_laws):
open_lm runs of 11 sizes (57M-1.2B parameters), several peak learning rates and lengths, each a cosine
schedule with 50 warm-up steps down to 10% of the peak, 2^20 tokens per step (the authors'
``open_lm/constants/slurm_constants.py``). The data (``../shared/data/li2025_misfitting``) has no license,
so it is read from there and not shipped.

Law ``lr_annealing`` (Tissue et al. 2024) on the schedule's areas (``bs.schedule_areas``), grouped by run.
Checkpoints of one run are correlated: with independent noise, a random effect per run on the data term ``b``
(partial pooling) carries the run's lasting offset, the other parameters shared. With autocorrelated noise the
noise carries it and every parameter is shared: its correlation length comes out at ~100 decades, an offset
for the whole run, and a random ``b`` beside it is the same offset twice (the fits' ``b_sd`` and the runs'
``b`` did not converge, R-hat 1.6-1.9, with Student-t noise); these fits draw 1000 a chain, not 300. Scored on
every run with at least 3 checkpoints (after warm-up) in its first 30%: the final checkpoint's loss against
the posterior predictive of a new observation there.

Two protocols:

- ``in-flight`` (5 folds by run): the fold's runs are cut at 30% of their steps, the other runs are
  complete, as when a ladder of finished runs is at hand and new runs are under way;
- ``all-early``: every run is cut at 30%, nothing has finished.

Each protocol with the default Student-t likelihood and with a Normal one (``--likelihood``), each with
independent noise and with noise autocorrelated along the run's learning-rate area (``--noise``;
``autocorrelated="S1"``: an Ornstein-Uhlenbeck process per run, so a run that lies above the law at one
checkpoint is expected above it at the next, and a prediction follows the run's last checkpoint). In flight, the
discrepancy's ``kappa`` is also learned by a backtest (``kappa = backtested``): the all-early fit (every run
cut at 30%, no final loss seen) predicts the final loss of the runs outside the fold, whose misses give the
evidence about ``kappa`` (``calibrate.discrepancy_evidence``, each run's tilt on its own);
``calibrate.kappa_posterior`` updates the fit's ``kappa`` prior with it, and the fold's fit predicts with that
posterior (``with_discrepancy``, no refit). This is what a user with finished runs can do: cut them, refit,
and learn how far the law strays; no fit behind the evidence has seen a final loss, and the scored runs' own
finals give none of it. The all-early fit has seen no run finish, so it may stray further than the fold's fit
does; ``kappa = matched`` learns from a fit like the fold's instead: the next fold's runs and the scored ones
cut at 30%, every other run finished, the next fold's finals as the evidence (5 more fits). Prints, per
protocol, likelihood and kappa, the median absolute percentage error (MdAPE), the share of runs inside their
50% and 90% intervals, the median bias and the worst R-hat over the folds' fits; writes
``learning_curves_results.md``. About an hour on 2 cores (the Student-t fits take most of it).

    .venv/bin/python benchmarks/learning_curves.py [--protocol in-flight|all-early] [--likelihood normal]
        [--noise independent|autocorrelated] [--folds 5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from downstream import markdown  # the benchmarks' Markdown table

import bayes_scaling as bs
from bayes_scaling.calibrate import discrepancy_evidence, kappa_posterior

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "li2025_misfitting" / "misfitting_all_checkpoints.csv"
SCHEDULE = {"tokens_per_step": 2**20, "warmup": 50, "final_lr": 0.1, "shape": "cosine"}
EARLY = 0.3
OPTIONS = {
    "law": "lr_annealing",
    "group": "run",
    "pooling": {"E": "shared", "a": "shared", "alpha": "shared", "b": "partial", "beta": "shared", "K": "shared"},
    "chains": 4,
    "draws": 300,
    "tune": 700,
    "progressbar": False,
}


def checkpoints() -> pd.DataFrame:
    """One row per (run, step): repeated evaluations of a checkpoint averaged; the few evaluations the
    table places past their run's last step left out."""
    raw = pd.read_csv(DATA)
    raw = raw[raw.current_steps <= raw.total_steps]
    keys = ["model", "run_id_sweep", "peak_lr", "total_steps", "current_steps"]
    runs = raw.groupby(keys, as_index=False).agg(n_params=("n_params", "first"), loss=("loss", "mean"))
    runs["run"] = runs[keys[:4]].astype(str).agg("/".join, axis=1)
    runs = bs.schedule_areas(runs, step="current_steps", **SCHEDULE)
    return runs.assign(early=runs.current_steps <= EARLY * runs.total_steps)


def fit_without(runs: pd.DataFrame, cut: pd.Series, *, seed: int, likelihood: str, noise: str) -> bs.ScalingFit:
    """The law fitted to the checkpoints not ``cut`` (convergence is read from each fit's diagnostics)."""
    along = "S1" if noise == "autocorrelated" else None
    options = {**OPTIONS, "pooling": "shared", "draws": 1000} if along else OPTIONS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        return bs.fit(runs[~cut], seed=seed, likelihood=likelihood, autocorrelated=along, **options)


def score(fit: bs.ScalingFit, finals: pd.DataFrame) -> pd.DataFrame:
    pred = fit.predict(finals, prob=(0.5, 0.9), kind="observation", seed=0)
    return pred.assign(run=finals["run"].to_numpy(), ape=(pred["median"] / pred["observed"] - 1).abs())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=["in-flight", "all-early", "both"], default="both")
    parser.add_argument("--likelihood", choices=["student_t", "normal", "both"], default="both")
    parser.add_argument("--noise", choices=["independent", "autocorrelated", "both"], default="both")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    runs = checkpoints()
    counts = runs[runs.early].groupby("run").size()
    scored = counts.index[counts >= 3].to_numpy()
    finals = runs[runs.current_steps == runs.total_steps].drop_duplicates("run").set_index("run").loc[scored]
    finals = finals.reset_index()
    print(f"{runs.run.nunique()} runs, {len(runs)} checkpoints; scoring the {len(scored)} runs with >= 3 early ones")
    protocols = ["in-flight", "all-early"] if args.protocol == "both" else [args.protocol]
    likelihoods = ["student_t", "normal"] if args.likelihood == "both" else [args.likelihood]
    noises = ["independent", "autocorrelated"] if args.noise == "both" else [args.noise]
    rows = []
    for likelihood, noise in ((lik, noise) for noise in noises for lik in likelihoods):
        fitted = {}  # protocol: ([(fit, the finals it predicts)], worst R-hat, minutes)
        for protocol in protocols:
            start = time.perf_counter()
            if protocol == "all-early":
                folds = [scored]
            else:
                folds = np.array_split(np.random.default_rng(0).permutation(scored), args.folds)
            fits, r_hat = [], 0.0
            for i, fold in enumerate(folds):
                cut = runs.run.isin(fold) & ~runs.early if protocol == "in-flight" else ~runs.early
                fit = fit_without(runs, cut, seed=i, likelihood=likelihood, noise=noise)
                fits.append((fit, finals[finals.run.isin(fold)]))
                r_hat = max(r_hat, fit.diagnostics["max_r_hat"])
                kept = int((~cut).sum())
                print(
                    f"{likelihood} {noise} {protocol} fold {i + 1}/{len(folds)}: {kept} checkpoints, {fit.diagnostics}"
                )
            fitted[protocol] = (fits, r_hat, (time.perf_counter() - start) / 60)
        for protocol, (fits, r_hat, minutes) in fitted.items():
            variants = {"prior": [score(fit, test) for fit, test in fits]}
            if protocol == "in-flight" and "all-early" in fitted:  # kappa from the other runs' backtest
                ((early, everyone),) = fitted["all-early"][0]
                variants["backtested"], variants["matched"] = [], []
                for i, (fit, test) in enumerate(fits):
                    others = everyone[~everyone.run.isin(test.run)]
                    kappa = kappa_posterior(discrepancy_evidence(early, others, seed=0), early.priors["kappa"])
                    print(f"{likelihood} fold {i + 1}: kappa ~ {kappa}")
                    variants["backtested"].append(score(fit.with_discrepancy(kappa, seed=0), test))
                    # matched: the next fold cut too, beside finished runs as in flight; its finals are the evidence
                    other = fits[(i + 1) % len(fits)][1].run.to_numpy()
                    cut = runs.run.isin(np.concatenate([test.run.to_numpy(), other])) & ~runs.early
                    peer = fit_without(runs, cut, seed=100 + i, likelihood=likelihood, noise=noise)
                    evidence = discrepancy_evidence(peer, finals[finals.run.isin(other)], seed=0)
                    kappa = kappa_posterior(evidence, peer.priors["kappa"])
                    print(f"{likelihood} fold {i + 1}, matched: kappa ~ {kappa}")
                    variants["matched"].append(score(fit.with_discrepancy(kappa, seed=0), test))
            for kappa, preds in variants.items():
                pred = pd.concat(preds)
                rows.append(
                    {
                        "likelihood": likelihood,
                        "noise": noise,
                        "protocol": protocol,
                        "kappa": kappa,
                        "runs": len(pred),
                        "mdape_pct": 100 * pred["ape"].median(),
                        "coverage_50": pred["inside_eti50"].mean(),
                        "coverage_90": pred["inside_eti90"].mean(),
                        "median_bias_pct": 100 * (pred["median"] / pred["observed"] - 1).median(),
                        "max_r_hat": r_hat,
                        "minutes": minutes,
                    }
                )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    if args.protocol == "both":  # the rows of the (likelihood, noise) pairs run here replace those written before
        out = Path(__file__).with_name("learning_curves_results.md")
        keys = ["likelihood", "noise"]
        old = written(out)
        if len(old):
            old = old[~old.set_index(keys).index.isin(table.set_index(keys).index)]
        order = {"student_t": 0, "normal": 1, "independent": 0, "autocorrelated": 1, "in-flight": 0, "all-early": 1}
        both = pd.concat([old, table.astype(object)], ignore_index=True)
        both = both.sort_values(["noise", "likelihood", "protocol"], key=lambda c: c.map(order), kind="stable")
        out.write_text(
            "# Learning curves: final loss of Li et al. (2025)'s runs from their first 30% of checkpoints\n\n"
            "`.venv/bin/python benchmarks/learning_curves.py` (law `lr_annealing`; independent noise with a random "
            "effect per run on `b`, or noise autocorrelated along the run's learning-rate area with the law's "
            "parameters shared and 1000 draws a chain; intervals of a new observation at the final step).\n\n"
            + markdown(both)
            + "\n"
        )
        print(f"wrote {out}")


def written(out: Path) -> pd.DataFrame:
    """The table of an earlier run's Markdown (cells as text), or an empty one."""
    lines = (
        [line.strip().strip("|") for line in out.read_text().splitlines() if line.startswith("|")]
        if out.exists()
        else []
    )
    if not lines:
        return pd.DataFrame()
    cells = [[cell.strip() for cell in line.split("|")] for line in lines]
    return pd.DataFrame(cells[2:], columns=cells[0])


if __name__ == "__main__":
    main()
