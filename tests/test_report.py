"""Plots, the HTML report, and the report seen in a real browser."""

import json
import re
import shutil

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling import plots
from bayes_scaling.report import decision_table, write_report
from conftest import CHINCHILLA_TRUTH, run


@pytest.mark.parametrize("x", ["N", "D", "C"])
def test_plot_loss(chinchilla_fit, x):
    fig, ax = plt.subplots()
    assert plots.plot_loss(chinchilla_fit, x, ax=ax) is ax
    assert ax.get_xscale() == "log" and len(ax.collections) >= 3  # two bands and the runs
    assert "extrapolation" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)


def test_other_plots(chinchilla_fit):
    ax = plots.plot_frontier(chinchilla_fit)
    labels = [t.get_text() for t in ax.texts]
    assert "Chinchilla 70B / 1.4T" in labels and len(ax.lines) >= 2
    ax = plots.plot_isoflop(chinchilla_fit, [1e19, 1e21])
    assert len(ax.lines) == 4  # two medians, two optima
    ax = plots.plot_exponents(chinchilla_fit)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("alpha", "beta")
    with pytest.raises(bs.BayesScalingError, match="cannot plot against 'U'"):
        plots.plot_loss(chinchilla_fit, "U")
    plt.close("all")


def heldout_runs():
    """Runs beyond the simulated grid, on the true law."""
    n = np.geomspace(5e9, 3e10, 6)
    loss = bs.load_law("chinchilla").evaluate(CHINCHILLA_TRUTH, N=n, D=20 * n)
    return pd.DataFrame({"n_params": n, "n_tokens": 20 * n, "loss": loss})


def test_calibration_plots(chinchilla_fit):
    cal = bs.calibration(chinchilla_fit, heldout_runs(), seed=0)
    other = bs.calibration(chinchilla_fit.with_discrepancy(None), heldout_runs(), seed=0)
    ax = plots.plot_calibration({"default": cal, "no discrepancy": other})
    assert len(ax.lines) == 3 and ax.get_xlim() == (0, 1)  # the diagonal and two curves
    assert "calibrated, 6 runs (95%)" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = plots.plot_pit(cal)
    assert sum(p.get_height() for p in ax.patches) == 6
    plt.close("all")


@pytest.fixture(scope="module")
def report(chinchilla_fit, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(
        chinchilla_fit,
        out,
        at=[{"N": 70e9, "D": 1.4e12}],
        compute=[1e21, 5.76e23, 1e25],
        heldout=heldout_runs(),
        command="test",
    )


HEADINGS = (
    "Decision: compute-optimal allocation per budget",
    "Extrapolation",
    "Held-out runs",
    "Figures",
    "Checks",
    "Parameters (90% intervals)",
    "Provenance",
)


def test_report_contents(report, chinchilla_fit):
    page = report.read_text()
    assert [page.index(f"<h2>{h}") for h in HEADINGS] == sorted(page.index(f"<h2>{h}") for h in HEADINGS)
    assert "6 runs the fit did not see" in page
    # one self-contained file: every figure embedded, nothing else written
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == 11 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]
    assert "pymc 6." in page and "5.76e+23" in page
    # the runs reach 3.5e22 FLOPs: at 5.76e23 the optimal N leaves their range, 1e25 is 289x beyond them
    (warns,) = re.findall(r'<p class="warn">(.*?)</p>', page)
    assert "1 of 3 budgets lie more than 100x beyond the largest run" in warns
    assert "At 2 of 3 budgets the optimal model size N lies outside" in warns
    with pytest.raises(bs.OutputExistsError, match="overwrite=True"):
        write_report(chinchilla_fit, report)
    # the diagnostics rows are marked red by their own check: this fit passes every one
    assert 'class="bad"' not in page


def test_decision_table(chinchilla_fit):
    table, warnings = decision_table(chinchilla_fit, [1e20, 1e25])
    assert list(table.columns) == [
        "budget C (FLOPs)",
        "x largest run",
        "N_opt",
        "D_opt",
        "tokens / param",
        "loss",
        "distance (decades)",
        "note",
    ]
    assert table["note"][0] == "within the runs' range" and table["note"][1].startswith("289x beyond; N above the runs")
    assert warnings[0] == "1 of 2 budgets lie more than 100x beyond the largest run (3.46e+22 FLOPs): 1e+25."
    assert float(table["distance (decades)"][1]) > float(table["distance (decades)"][0])


def test_report_never_replaces_a_file_it_did_not_write(chinchilla_fit, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<p>precious</p>")
    with pytest.raises(bs.OutputExistsError, match="not a report written here"):
        write_report(chinchilla_fit, mine, overwrite=True)
    assert mine.read_text() == "<p>precious</p>"
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    first = write_report(chinchilla_fit, folder)  # a folder gets index.html; nothing else in it is touched
    write_report(chinchilla_fit, folder, overwrite=True)
    assert first == folder / "index.html" and (folder / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "mine.txt"]


def _chromium():
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return exe, sync_playwright


def test_report_in_headless_chromium(report, tmp_path):
    """The page loads with no console errors, opens with the decision table, no table is wider than the
    page, every image has a non-zero size, and a screenshot of the top is saved."""
    exe, sync_playwright = _chromium()
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=exe,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("requestfailed", lambda r: errors.append(f"failed to load {r.url}"))
        page.goto(report.as_uri(), wait_until="load")
        sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        body = page.evaluate("document.body.clientWidth")
        tables = page.eval_on_selector_all("table", "ts => ts.map(t => t.getBoundingClientRect().right)")
        first = page.eval_on_selector("h2", "h => [h.textContent, h.getBoundingClientRect().top]")
        table_top = page.eval_on_selector("table", "t => t.getBoundingClientRect().top")
        page.screenshot(path=shot)
        browser.close()
    assert not errors
    assert len(sizes) == 11 and all(w > 0 and h > 0 for w, h in sizes)
    assert tables and max(tables) <= page_right(body), (tables, body)
    assert first[0].startswith("Decision") and table_top < 900  # the decision table is on the first screen
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def page_right(body_width: float) -> float:
    """The right edge tables may reach: the body's width plus its left offset (centred, max 1100 px)."""
    return (1280 + body_width) / 2 + 1


def test_cli_optimal_and_report(chinchilla_fit, tmp_path):
    fit_path = chinchilla_fit.save(tmp_path / "fit.nc")
    result = json.loads(run("optimal", fit_path, "--compute", "1e21,5.76e23", "--prob", "0.9", "--json").stdout)
    rows = result["rows"]
    assert [r["C"] for r in rows] == [1e21, 5.76e23] and rows[1]["N_opt_eti90_lower"] < rows[1]["N_opt_median"]
    assert result["schema"] == 1 and result["law"] == "chinchilla" and result["version"] == bs.__version__
    site = tmp_path / "site"
    run("report", fit_path, "--at", "N=7e10,D=1.4e12", "--compute", "1e23", "--out", site)
    page = (site / "index.html").read_text()
    assert "bayes-scaling report" in page and "N=7e10,D=1.4e12" in page
    again = run("report", fit_path, "--out", site, check=False)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    ignored = run("report", fit_path, "--law", "kaplan_nd", "--out", tmp_path / "r.html", check=False)
    assert ignored.returncode == 2 and "--law would not change it" in ignored.stderr
    bad = run("optimal", fit_path, "--compute", "1e21,lots", check=False)
    assert bad.returncode == 2 and "expected numbers" in bad.stderr
