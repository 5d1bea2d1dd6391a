"""Simulation-based calibration of every bundled law with the default observation model.

    python benchmarks/sbc.py [--cycles 200] [--client local] [--laws chinchilla,kaplan_nd]

For each law: ``cycles`` prior draws, runs simulated on the 8 x 8 design of ``bayes_scaling.sbc.design``,
fits (on Dask, compiled once per worker, data swapped in), ranks of every sampled and published parameter among 99
thinned posterior draws, a chi-square uniformity test per parameter (passes at p > 0.01 / number of
parameters), and an ECDF-difference plot. Writes benchmarks/sbc_results.md (``--laws`` replaces the rows of
the laws it names and keeps the others) and benchmarks/sbc/<law>.png.
"""

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import bayes_scaling as bs
from bayes_scaling import plots
from bayes_scaling.sbc import sbc

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--client", default="local", help="'local' (a Dask process per core), an address, or 'none'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--laws", default=",".join(bs.list_laws()))
    args = parser.parse_args()
    (HERE / "sbc").mkdir(exist_ok=True)
    client = None
    if args.client == "local":  # one cluster for every law: each worker compiles each law once
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(threads_per_worker=1, dashboard_address=None))
    elif args.client != "none":
        client = args.client
    out = HERE / "sbc_results.md"
    header = [
        f"Simulation-based calibration, {args.cycles} cycles per law (`python benchmarks/sbc.py`). p: chi-square "
        "test of uniform ranks (10 bins); a law passes when every parameter has p > 0.01 / parameters. "
        "`unconverged`: cycles whose fit had R-hat > 1.01 or a divergence (ESS is below 400 "
        "by construction: 2 chains of 198 draws).",
        "",
        "| law | cycles | parameters | lowest p (parameter) | passes | unconverged | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    # the rows of laws not run now are kept (``--laws`` updates those it names)
    old = out.read_text().splitlines()[len(header) :] if out.is_file() else []
    rows = {line.split("|")[1].strip(): line for line in old if line.startswith("| ")}
    for law in args.laws.split(","):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sbc(law, cycles=args.cycles, seed=args.seed, client=client)
        minutes = (time.perf_counter() - start) / 60
        summary = result.summary()
        worst = summary["p_value"].idxmin()
        unconverged = int((result.ranks["problems"].str.contains("R-hat|divergent")).sum())
        row = (
            f"| {law} | {len(result.ranks)} | {len(summary)} | {summary.loc[worst, 'p_value']:.3g} ({worst}) | "
            f"{'yes' if result.passed else '**no**'} | {unconverged} | {minutes:.1f} |"
        )
        print(row, flush=True)
        rows[law] = row
        result.ranks.to_csv(HERE / "sbc" / f"{law}_ranks.csv", index=False)
        fig, ax = plt.subplots(figsize=(6, 4))
        plots.plot_sbc(result, ax=ax)
        fig.tight_layout()
        fig.savefig(HERE / "sbc" / f"{law}.png", dpi=100)
        plt.close(fig)
        out.write_text("\n".join(header + [rows[k] for k in sorted(rows)]) + "\n")  # after each law


if __name__ == "__main__":
    main()
