import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.data import DataError, load_runs

INPUTS = ("N", "D")


def runs(**overrides):
    frame = pd.DataFrame(
        {"n_params": [1e7, 1e8, 1e9], "n_tokens": [2e8, 2e9, 2e10], "loss": [4.0, 3.2, 2.7], "dataset": ["a", "b", "a"]}
    )
    for key, value in overrides.items():
        frame[key] = value
    return frame


def test_valid_table_and_groups():
    table = load_runs(runs(), inputs=INPUTS, group="dataset")
    assert len(table) == 3 and table.groups == ("a", "b") and list(table.group) == [0, 1, 0]
    np.testing.assert_array_equal(table.inputs["D"], [2e8, 2e9, 2e10])
    assert list(table.to_frame().columns) == ["n_params", "n_tokens", "dataset", "loss"]


def test_column_mapping_and_csv(tmp_path):
    frame = runs().rename(columns={"n_params": "params", "loss": "val_loss"})
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    table = load_runs(path, inputs=INPUTS, columns={"N": "params", "loss": "val_loss"})
    np.testing.assert_array_equal(table.loss, [4.0, 3.2, 2.7])


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (runs().drop(columns="n_tokens"), {}, "missing column(s) 'n_tokens' (for D)"),
        (runs(loss=["4.0", "x", "2.7"]), {}, "column 'loss' has non-numeric value 'x' in row 1"),
        (runs(loss=[4.0, np.nan, 2.7]), {}, "column 'loss' has 1 missing or infinite value(s), first in row 1"),
        (runs(n_tokens=[2e8, np.inf, 2e10]), {}, "column 'n_tokens' has 1 missing or infinite"),
        (runs(n_params=[1e7, 0.0, 1e9]), {}, "column 'n_params' must be positive; row 1 has 0"),
        (runs(n_tokens=[2e8, -5.0, 2e10]), {}, "column 'n_tokens' must be positive; row 1 has -5"),
        (runs(loss=[4.0, 3.2, -2.7]), {}, "column 'loss' must be positive; row 2 has -2.7"),
        (runs(), {"min_runs": 7}, "3 run(s) is fewer than the 7 free parameters"),
        (
            runs(),
            {"columns": {"N": "n_params", "D": "n_params"}},
            "column 'n_params' is mapped twice: to 'N' and to 'D'",
        ),
        (runs(), {"group": "loss"}, "column 'loss' is mapped twice"),
        (runs(), {"columns": {"X": "n_params"}}, "columns given for ['X']"),
        (runs(), {"group": "arch"}, "missing column(s) 'arch' (for group)"),
        (runs(dataset=["a", None, "b"]), {"group": "dataset"}, "group column 'dataset' has missing values"),
    ],
)
def test_data_errors(frame, kwargs, message):
    with pytest.raises(DataError) as info:
        load_runs(frame, inputs=INPUTS, **kwargs)
    assert message in str(info.value)


def test_missing_file_and_bad_type(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_runs(tmp_path / "none.csv", inputs=INPUTS)
    with pytest.raises(DataError, match="must be a pandas DataFrame, a mapping of columns or a CSV path, got list"):
        load_runs([1, 2], inputs=INPUTS)


def test_fit_refuses_too_few_runs():
    # chinchilla has 5 law parameters plus sigma and nu: 7 free parameters
    with pytest.raises(DataError, match="fewer than the 7 free parameters"):
        bs.fit(runs(), law="chinchilla")


def test_caller_frame_is_not_mutated():
    frame = runs()
    before = frame.copy()
    load_runs(frame, inputs=INPUTS, group="dataset")
    pd.testing.assert_frame_equal(frame, before)


def test_bundled_dataset_has_provenance():
    frame = bs.load_dataset("gadre2024")
    assert len(frame) == 104 and set(frame["dataset"]) == {"c4_original", "rpj", "rw_original"}
    assert "MIT License" in frame.attrs["license"] and "a003c4913793" in frame.attrs["provenance"]
    assert frame["n_params"].max() == pytest.approx(6.889e9, rel=1e-3)
    with pytest.raises(bs.OptionError, match="unknown dataset 'pile'"):
        bs.load_dataset("pile")
