from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    test_command = next(line for line in readme if "pytest" in line and line.startswith("("))
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme.index(test_command) < 12, "README must open with the set-up commands"
    assert any(line.startswith("python3 -m venv .venv") and line.endswith("bayes-scaling demo") for line in readme[:12])


@pytest.mark.slow
def test_readme_python_runs(tmp_path, monkeypatch):
    """The README's Python examples run as written (in a scratch folder: the first saves a file; the last
    fits on a Dask LocalCluster)."""
    import re
    import warnings

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "c4.nc").is_file()
    assert [o.error for o in namespace["outcomes"]] == [None] * 3 and "alpha" in namespace["outcomes"][1].value.index
