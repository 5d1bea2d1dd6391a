import numpy as np
import pytest

import bayes_scaling as bs
from bayes_scaling.laws import Law, LawError

# Hand-written numpy references of each bundled law, in published parameters.
REFERENCES = {
    "chinchilla": (
        lambda p, N, D: p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"],
        {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    ),
    "kaplan_nd": (
        lambda p, N, D: ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"],
        {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
    ),
}
GRID = {"N": np.geomspace(1e6, 1e12, 7)[:, None], "D": np.geomspace(1e8, 1e14, 5)[None, :]}


def test_catalogue_lists_every_file():
    assert {"chinchilla", "kaplan_nd"} <= set(bs.list_laws())
    assert set(bs.list_laws()) == set(REFERENCES), "add a numpy reference for every new law"


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_law_agrees_with_numpy_reference(name):
    law = bs.load_law(name)
    reference, params = REFERENCES[name]
    np.testing.assert_allclose(law.evaluate(params, **GRID), reference(params, **GRID), rtol=1e-12)
    assert law.citation and law.inputs == ("N", "D")
    np.testing.assert_allclose(law.compute_flops(N=2.0, D=3.0), 36.0)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_sampled_form_equals_published_form(name):
    """The well-conditioned form NUTS samples is the same function as the published one."""
    law = bs.load_law(name)
    rng = np.random.default_rng(0)
    for _ in range(20):
        sampled = {}
        for p, prior in law.priors.items():
            k = prior.kwargs
            draw = rng.normal(k["mu"], k["sigma"])
            sampled[p] = np.exp(draw) if prior.dist == "LogNormal" else draw
        natural = law.to_natural(sampled)
        np.testing.assert_allclose(law.evaluate_sampled(sampled, **GRID), law.evaluate(natural, **GRID), rtol=1e-9)


def test_chinchilla_reference_number():
    # Hoffmann et al. (2022) Approach 3 at Chinchilla's own size: 70B parameters on 1.4T tokens.
    law = bs.load_law("chinchilla")
    loss = law.evaluate(REFERENCES["chinchilla"][1], N=70e9, D=1.4e12)
    assert loss == pytest.approx(1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28) and 1.9 < loss < 2.0


def test_load_by_path_and_unknown(tmp_path):
    path = bs.laws.laws_dir() / "chinchilla.toml"
    assert bs.load_law(path).name == "chinchilla"
    with pytest.raises(LawError, match="unknown law 'chinchila'; known laws: chinchilla"):
        bs.load_law("chinchila")
    with pytest.raises(LawError, match="does not exist"):
        bs.load_law(tmp_path / "nope.toml")


BASE = (bs.laws.laws_dir() / "chinchilla.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "chinchilla"', "", "missing key(s) name"),
        ('formula = "E + A / N**alpha + B / D**beta"', 'formula = "E + A / N**alpha + B / D**beta + os.system"',
         "attribute access is not allowed"),
        ('formula = "E + A / N**alpha + B / D**beta"', 'formula = "E + A / N**alpha + B / D**gamma"',
         "unknown name 'gamma'"),
        ('formula = "E + A / N**alpha + B / D**beta"', 'formula = "E + A / N**alpha"', "does not use parameter(s) B, beta"),
        ("D = 2e10", "D = -1", "one positive number per input"),
        ('dist = "Normal", kwargs = { mu = -1.0', 'dist = "Normall", kwargs = { mu = -1.0', "unknown distribution 'Normall'"),
        ('alpha = "alpha"', 'alpha = "2 * alpha"', "share a sampled name but are not equal to it"),
        ('citation = "', 'import_path = "x"\ncitation = "', "unknown key(s) import_path"),
        ("[scales]", "[scales", "invalid TOML"),
    ],
)
def test_malformed_law_files(old, new, message):
    assert old in BASE
    with pytest.raises(LawError) as info:
        Law.from_toml(BASE.replace(old, new, 1))
    assert message in str(info.value)
