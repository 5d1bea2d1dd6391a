"""Small real scaling-law datasets shipped with the package, each with its provenance and license."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import OptionError

__all__ = ["list_datasets", "load_dataset"]

_HERE = Path(__file__).resolve().parent

#: name -> (CSV file, license file, one-line description)
DATASETS: dict[str, tuple[str, str, str]] = {
    "gadre2024": (
        "gadre2024.csv",
        "LICENSE-gadre2024.txt",
        "Gadre et al. (2024), 104 open_lm runs (10.6M-6.9B parameters, 5-640 tokens/parameter) on three "
        "pretraining datasets (column 'dataset': c4_original, rpj, rw_original); loss is C4 validation loss. MIT.",
    ),
    "muennighoff2023": (
        "muennighoff2023.csv",
        "LICENSE-muennighoff2023.txt",
        "Muennighoff et al. (2023), 182 C4 runs with repeated data (column unique_tokens; up to thousands of "
        "epochs), the set behind the paper's data-constrained fit; loss is C4 validation loss. Apache-2.0.",
    ),
}


def list_datasets() -> dict[str, str]:
    """Bundled datasets and their descriptions."""
    return {name: desc for name, (_, _, desc) in DATASETS.items()}


def load_dataset(name: str) -> pd.DataFrame:
    """A bundled dataset as a DataFrame; ``df.attrs`` holds its provenance and license.

    ``gadre2024``: columns ``dataset``, ``model_config``, ``n_params``, ``n_params_no_embed``,
    ``n_tokens``, ``compute_flops`` (6ND), ``loss`` (C4 validation loss, nats/token) and
    ``tokens_per_param_nominal``. The 1.4B and 6.9B runs are the paper's extrapolation targets.

    ``muennighoff2023``: columns ``run_name``, ``n_params``, ``n_tokens``, ``unique_tokens``, ``epochs``,
    ``compute_flops`` (6ND) and ``loss`` (C4 validation loss); fit it with ``law="data_constrained"``.
    """
    if name not in DATASETS:
        raise OptionError(f"unknown dataset {name!r}; bundled datasets: {', '.join(DATASETS)}")
    csv, license_file, desc = DATASETS[name]
    frame = pd.read_csv(_HERE / csv)
    frame.attrs.update(
        name=name,
        description=desc,
        provenance=(_HERE / "README.md").read_text(),
        license=(_HERE / license_file).read_text(),
    )
    return frame
