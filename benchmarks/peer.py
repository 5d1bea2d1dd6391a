"""Adapter that runs the peer package ``simple-scaling-laws`` 0.2.0 (MIT, import ``simple_scaling_laws``).

``peer_intervals`` turns a table of training runs (one row = one independently trained run with one final
loss) into the peer's long input format -- ``training_run_id``, ``model_size__*`` / ``dataset_size__*``
predictors and one ``test_loss__loss`` target, no ``test_set_id`` since there are no evaluation resamples --
fits it with the peer's defaults (1000 wild-cluster-bootstrap draws) and returns its predictive quantiles
for the test rows.

Law: ``separable-power``. With N and D that is ``E + A N^-alpha + B D^-beta``; with a single predictor the
same law is exactly ``E + A x^-alpha``, so it is used there too (``broken-power`` is the peer's only
single-predictor-specific law, a smoothly broken power law with six parameters, not ``E + A x^-alpha``).

Intervals: the peer's ``predict`` defaults to ``kind="mean"``, bootstrap quantiles of the fitted *curve*
(parameter uncertainty only). We call it with ``kind="new-run"``, which adds training-run noise to each
draw, i.e. an interval for one new run's observed loss. With one run per configuration the peer estimates
that run-to-run SD from the residual scatter about the fit (SSR / (n - p), so it also absorbs lack of fit),
holds it fixed across draws and draws the noise as Gaussian; replicate runs at the same (N, D), if any, are
used instead when they give at least 3 degrees of freedom. The peer never adds evaluation-set noise (there
is none here anyway). Quantiles are the empirical quantiles of its 1000 draws.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def peer_intervals(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    inputs: dict[str, str],
    loss: str = "loss",
    probs=(0.5, 0.9),
    seed: int = 0,
) -> dict[str, np.ndarray] | None:
    """Fit the peer on ``train`` and return its new-run median and equal-tailed intervals at ``test`` rows.

    ``inputs`` maps our input names to columns of both frames; ``"N"`` becomes a model-size predictor and any
    other name (``"D"``, ``"x"``) a dataset-size predictor (the role only names the parameters). Returns
    ``{"median", "eti50_lower", "eti50_upper", "eti90_lower", "eti90_upper"}`` (one key pair per entry of
    ``probs``, quantiles (1-p)/2 and (1+p)/2) as arrays aligned with ``test``, in loss units, or None if the
    peer is not installed. The peer's notes and warnings are silenced; its exceptions propagate.
    """
    try:
        import polars as pl
        from simple_scaling_laws import fit
        from simple_scaling_laws.model import quantile_suffix
    except ImportError:
        return None

    cols = {("model_size__" if name == "N" else "dataset_size__") + col: col for name, col in inputs.items()}
    runs = pl.DataFrame(
        {
            "training_run_id": [f"run{i}" for i in range(len(train))],
            **{peer: train[col].to_numpy(dtype=float) for peer, col in cols.items()},
            "test_loss__loss": train[loss].to_numpy(dtype=float),
        }
    )
    points = pl.DataFrame({peer: test[col].to_numpy(dtype=float) for peer, col in cols.items()})
    quantiles = [0.5] + [q for p in probs for q in ((1 - p) / 2, (1 + p) / 2)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the peer warns on extrapolation; its fit notes are only recorded
        model = fit(runs, law="separable-power", seed=seed)
        pred = model.predict(points, kind="new-run", quantiles=quantiles)

    out = {"median": pred[f"test_loss__loss__{quantile_suffix(0.5)}"].to_numpy()}
    for p in probs:
        for side, q in (("lower", (1 - p) / 2), ("upper", (1 + p) / 2)):
            out[f"eti{round(100 * p)}_{side}"] = pred[f"test_loss__loss__{quantile_suffix(q)}"].to_numpy()
    return out
