"""Every tutorial notebook is committed with its outputs and still runs top to bottom."""

import copy
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # each notebook samples real fits

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _shape(notebook) -> list[set[str]]:
    """Per code cell, the kinds of rich output it shows (streams vary with progress bars and warnings)."""
    return [
        {o["output_type"] for o in cell.get("outputs", []) if o["output_type"] != "stream"}
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    committed = nbformat.read(path, as_version=4)
    assert not any("error" in kinds for kinds in _shape(committed)), "committed with an error output"
    assert sum(bool(kinds) for kinds in _shape(committed)) >= 2, "committed without outputs: re-execute it"
    executed = copy.deepcopy(committed)
    # raises CellExecutionError, naming the cell, if any cell fails
    NotebookClient(
        executed, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert all(c.execution_count for c in executed.cells if c.cell_type == "code")
    assert _shape(executed) == _shape(committed), "outputs changed shape since the notebook was committed"
