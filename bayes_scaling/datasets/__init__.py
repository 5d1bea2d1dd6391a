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
    "bhagia2024": (
        "bhagia2024.csv",
        "LICENSE-bhagia2024.txt",
        "Bhagia et al. (2024), the OLMo ladder (190M-3.2B at 0.5-10 x 20 tokens/parameter) and its 7B and 13B "
        "targets, 20 task splits each (column 'task'): task loss rc_bpb, accuracy rc_acc, chance_acc. Apache-2.0.",
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

    ``bhagia2024``: one row per run and task split, ``role`` ``ladder`` or ``target`` (7B, 13B); columns
    ``n_params``, ``n_tokens``, ``compute_flops``, ``task``, ``chance_acc``, ``rc_bpb`` (task loss, bits per
    byte), ``rc_acc`` (accuracy), ``rc_soft_log`` (log-probability of the correct answer) and more (see
    the README beside the file); fit accuracy with ``law="sigmoid_compute"`` or two steps
    (:class:`~bayes_scaling.TwoStage`).
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
