"""Write the stored fit the fast tests load instead of sampling: ``python tests/data/make_fixtures.py``.

Run it again when the saved-fit format changes (``ScalingFit.load`` then names the mismatch). A small real
NUTS fit: simulated Chinchilla runs in two groups ("web", "code"), every
parameter partially pooled (the default for groups).
"""

import sys
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bayes_scaling as bs  # noqa: E402
from conftest import CHINCHILLA_TRUTH, simulate  # noqa: E402

STORED_FIT = HERE / "grouped_fit.nc"


def main() -> None:
    runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=5)
    web = runs.assign(dataset="web")
    code = simulate("chinchilla", {**CHINCHILLA_TRUTH, "E": 1.55, "alpha": 0.31}, seed=6).assign(dataset="code")
    table = pd.concat([web, code], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)  # short chains: the fixture is for shapes, not science
        fit = bs.fit(table, law="chinchilla", group="dataset", chains=2, draws=200, tune=300, seed=3, progressbar=False)
    fit.save(STORED_FIT, overwrite=True)
    print(f"wrote {STORED_FIT} ({STORED_FIT.stat().st_size / 1e6:.1f} MB), diagnostics {fit.diagnostics}")


if __name__ == "__main__":
    main()
