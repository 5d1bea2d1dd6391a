"""Post-processing at many groups: a fit of GROUPS groups of 2 runs each (every parameter partially pooled).

    python benchmarks/bench_groups.py [--groups 300]

Prints sampling seconds, post-processing seconds (log-likelihood, posterior predictive, diagnostics and the
checks: everything from the sampler's return to the fit's) and their ratio, measured in the same process;
also the time before sampling (reading the runs, building the model) apart from compiling.
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayes_scaling as bs
import bayes_scaling.fitting as fitting


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = np.repeat(np.geomspace(1e7, 1e9, args.groups), 2)
    d = n * np.tile([20.0, 80.0], args.groups)
    e = np.repeat(rng.normal(1.7, 0.05, args.groups), 2)
    loss = (e + 406.4 / n**0.34 + 410.7 / d**0.28) * np.exp(rng.normal(0, 0.01, n.size))
    runs = pd.DataFrame({"n_params": n, "n_tokens": d, "loss": loss, "group": np.repeat(np.arange(args.groups), 2)})
    called, returned = [], []
    run_sampler = fitting.run_sampler

    def timed(*args, **kwargs):
        called.append(time.perf_counter())
        tree = run_sampler(*args, **kwargs)
        returned.append(time.perf_counter())
        return tree

    fitting.run_sampler = timed
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(runs, group="group", pooling="partial", seed=args.seed, progressbar=False)
        end = time.perf_counter()
        checks = time.perf_counter()
        fit.misfits  # noqa: B018  the checks warn_if_unreliable already ran (cached), as a user reads them
        checks = time.perf_counter() - checks
    sampling, compiling = fit.settings["sample_seconds"], fit.settings["compile_seconds"]
    post = end - returned[-1]  # the last run's return: with adaptation='auto' the sampler may run twice
    before = called[0] - start - compiling
    print(
        f"{args.groups} groups x 2 runs: before sampling {before:.2f} s, compile {compiling:.1f} s, "
        f"sampling {sampling:.1f} s ({len(called)} run(s) of the sampler), "
        f"post-processing {post:.2f} s ({100 * post / sampling:.1f}% of sampling); "
        f"re-reading the checks {checks:.3f} s; {fit.diagnostics}"
    )


if __name__ == "__main__":
    main()
