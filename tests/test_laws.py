import numpy as np
import pytest

import bayes_scaling as bs
from bayes_scaling.laws import Law, LawError
from conftest import prior_band

# Muennighoff et al. (2023), the constants of their README's "Parametric Fit" example.
MUENNIGHOFF = {
    "E": np.exp(0.6254804),
    "A": np.exp(6.255414),
    "B": np.exp(7.3049974),
    "alpha": 0.3526596,
    "beta": 0.3526596,
    "R_D": 15.387756,
    "R_N": 5.309743,
}


def muennighoff(p, N, D, U):
    """Transcribed from the datablations README's scaling_law()."""
    G = ((p["alpha"] * p["A"]) / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    RD = np.maximum((D / U) - 1, 0)
    UN = np.minimum(N, (U * G) ** (p["beta"] / p["alpha"]) * G)
    RN = np.maximum((N / UN) - 1, 0)
    return (
        p["E"]
        + p["A"] / (UN + UN * p["R_N"] * (1 - np.exp(-1 * RN / p["R_N"]))) ** p["alpha"]
        + p["B"] / (U + U * p["R_D"] * (1 - np.exp(-1 * RD / p["R_D"]))) ** p["beta"]
    )


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
    "kaplan_n": (lambda p, N: (p["N_c"] / N) ** p["alpha_N"], {"N_c": 8.8e13, "alpha_N": 0.076}),
    "kaplan_d": (lambda p, D: (p["D_c"] / D) ** p["alpha_D"], {"D_c": 5.4e13, "alpha_D": 0.095}),
    "kaplan_c": (lambda p, C: (p["C_c"] / C) ** p["alpha_C"], {"C_c": 3.1e8 * 8.64e19, "alpha_C": 0.050}),
    "chinchilla_tied": (
        lambda p, N, D: p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["alpha"],
        {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.3},
    ),
    "power_irreducible": (lambda p, x: p["E"] + p["A"] / x ** p["alpha"], {"E": 1.7, "A": 400.0, "alpha": 0.34}),
    "broken_power": (
        lambda p, x: p["a"] + p["b"] * x ** -p["c0"] * (1 + (x / p["d1"]) ** (1 / p["f1"])) ** (-p["c1"] * p["f1"]),
        {"a": 1.7, "b": 13.0, "c0": 0.05, "c1": 0.15, "d1": 1e19, "f1": 0.5},
    ),
    "data_constrained": (muennighoff, MUENNIGHOFF),
    "sigmoid_compute": (
        lambda p, C, chance: chance + (1 - chance) * p["h"] / (1 + (C / p["C0"]) ** -p["k"]),
        {"h": 0.8, "k": 0.5, "C0": 1e21},
    ),
    "broken_sigmoid": (
        lambda p, C, chance: (
            chance
            + (1 - chance)
            * p["h"]
            / (
                1
                + np.exp(-p["a"]) * (C / p["C1"]) ** -p["k"] * (1 + (C / p["C1"]) ** (1 / p["f"])) ** (-p["j"] * p["f"])
            )
        ),
        {"h": 0.8, "a": -1.0, "k": 0.1, "j": 0.9, "C1": 1e21, "f": 0.4},
    ),
    "sigmoid_loss": (
        lambda p, L, chance: chance + (1 - chance) * p["h"] / (1 + np.exp(p["k"] * (L - p["L0"]))),
        {"h": 0.8, "k": 8.0, "L0": 0.9},
    ),
    "log_linear": (lambda p, C: p["a"] + p["b"] * np.log10(C / p["C0"]), {"a": -1.3, "b": 0.05, "C0": 1e20}),
    "lr_annealing": (
        lambda p, N, S1, S2: p["E"] + p["A"] / N ** p["alpha"] + p["B"] / S1 ** p["beta"] - p["K"] * S2,
        {"E": 2.0, "A": 400.0, "alpha": 0.34, "B": 600.0, "beta": 0.3, "K": 0.15},
    ),
    "batch_steps": (lambda p, B: p["S_min"] * (1 + p["B_crit"] / B), {"S_min": 2000.0, "B_crit": 3e5}),
    "kaplan_ns": (
        lambda p, N, S: (p["N_c"] / N) ** p["alpha_N"] + (p["S_c"] / S) ** p["alpha_S"],
        {"N_c": 6.5e13, "alpha_N": 0.076, "S_c": 2.1e3, "alpha_S": 0.76},
    ),
    "isoflop_parabola": (
        lambda p, N: p["Lmin"] + p["w"] * np.log(N / p["Nopt"]) ** 2,
        {"Lmin": 3.0, "w": 0.04, "Nopt": 3e8},
    ),
}
#: Gadre et al.'s column for each input of a law of a model's final loss.
GADRE_COLUMNS = {"N": "n_params", "D": "n_tokens", "C": "compute_flops", "x": "compute_flops", "U": "n_tokens"}
#: The laws of a final loss (not a learning curve, not steps), whose priors must cover real losses.
LOSS_LAWS = sorted(
    n for n in REFERENCES if bs.load_law(n).target == "positive" and set(bs.load_law(n).inputs) <= set(GADRE_COLUMNS)
)
GRID_AXES = {
    "N": np.geomspace(1e6, 1e12, 7),
    "D": np.geomspace(1e8, 1e14, 5),
    "C": np.geomspace(1e17, 1e25, 6),
    "x": np.geomspace(1e15, 1e25, 11),
    "U": np.geomspace(1e7, 1e13, 4),
    "L": np.linspace(0.5, 1.5, 5),
    "chance": np.array([0.2, 0.25, 0.5]),
    "S": np.geomspace(1e2, 1e6, 5),
    "S1": np.geomspace(1e8, 1e13, 4),
    "S2": np.array([0.0, 0.3, 0.9]),
    "B": np.geomspace(3e4, 1e7, 6),
}


def grid(law):
    """A broadcasting grid over the law's inputs."""
    axes = [GRID_AXES[k] for k in law.inputs]
    mesh = np.meshgrid(*axes, indexing="ij")
    return dict(zip(law.inputs, mesh, strict=True))


def test_catalogue_lists_every_file():
    assert {"chinchilla", "kaplan_nd"} <= set(bs.list_laws())
    assert set(bs.list_laws()) == set(REFERENCES), "add a numpy reference for every new law"


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_law_agrees_with_numpy_reference(name):
    law = bs.load_law(name)
    reference, params = REFERENCES[name]
    inputs = grid(law)
    np.testing.assert_allclose(law.evaluate(params, **inputs), reference(params, **inputs), rtol=1e-12)
    assert law.citation and law.title
    if {"N", "D"} <= set(law.inputs):
        np.testing.assert_allclose(law.compute_flops(N=2.0, D=3.0), 36.0)


def test_compute_formula_must_give_positive_flops():
    law = Law.from_toml(BASE.replace('compute = "6 * N * D"', 'compute = "6 * N * (D - 1e10)"', 1))
    np.testing.assert_allclose(law.compute_flops(N=1e9, D=2e10), 6e19)
    with pytest.raises(LawError, match=r"compute formula .* gives -6e\+18 at D=9e\+09, N=1e\+09; compute must be"):
        law.compute_flops(N=np.array([1e9, 1e9]), D=np.array([2e10, 9e9]))


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_sampled_form_equals_published_form(name):
    """The well-conditioned form NUTS samples is the same function as the published one."""
    inputs = grid(bs.load_law(name))
    law = bs.load_law(name).with_scales({k: np.median(v) for k, v in inputs.items()})
    draws = {p: prior.sample(20, seed=i) for i, (p, prior) in enumerate(law.priors.items())}
    for i in range(20):
        sampled = {p: v[i] for p, v in draws.items()}
        natural = law.to_natural(sampled)
        np.testing.assert_allclose(law.evaluate_sampled(sampled, **inputs), law.evaluate(natural, **inputs), rtol=1e-9)


@pytest.mark.parametrize("name", LOSS_LAWS)
def test_prior_predictive_covers_real_losses(name):
    """The default priors put the 104 real Gadre 2024 losses inside the 90% prior predictive band of the
    curve, without being vacuous (the band spans less than a factor 10 in loss)."""
    runs = bs.load_dataset("gadre2024")
    law = bs.load_law(name)
    inputs = {k: runs[GADRE_COLUMNS[k]].to_numpy() for k in law.inputs}
    law = law.with_scales(inputs)
    draws = {p: prior.sample(4000, seed=i)[:, None] for i, (p, prior) in enumerate(law.priors.items())}
    lo, hi = np.quantile(law.evaluate_sampled(draws, **inputs), [0.05, 0.95], axis=0)
    inside = np.mean((runs["loss"] >= lo) & (runs["loss"] <= hi))
    assert inside >= 0.95, f"only {inside:.0%} of real losses inside the 90% prior band"
    assert np.median(hi / lo) < 10


def test_data_constrained_reproduces_muennighoff_readme():
    # datablations README, "Parametric Fit": scaling_law(6.34e9, 242e9, 25e9) prints 2.2256440889984477
    # and scaling_law(8.67e9, 178e9, 25e9) prints 2.2269634075087867 (the models of their Figure 1, right).
    law = bs.load_law("data_constrained")
    assert law.evaluate(MUENNIGHOFF, N=6.34e9, D=242e9, U=25e9) == pytest.approx(2.2256440889984477, rel=1e-12)
    assert law.evaluate(MUENNIGHOFF, N=8.67e9, D=178e9, U=25e9) == pytest.approx(2.2269634075087867, rel=1e-12)


def test_chinchilla_reference_number():
    # Hoffmann et al. (2022) Approach 3 at Chinchilla's own size: 70B parameters on 1.4T tokens.
    law = bs.load_law("chinchilla")
    loss = law.evaluate(REFERENCES["chinchilla"][1], N=70e9, D=1.4e12)
    assert loss == pytest.approx(1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28) and 1.9 < loss < 2.0


def test_load_by_path_and_unknown(tmp_path):
    path = bs.laws.laws_dir() / "chinchilla.toml"
    assert bs.load_law(path).name == "chinchilla"
    known = ", ".join(sorted(bs.list_laws()))
    with pytest.raises(LawError, match=f"unknown law 'chinchila'; known laws: {known}$"):
        bs.load_law("chinchila")
    with pytest.raises(LawError, match="does not exist"):
        bs.load_law(tmp_path / "nope.toml")


BASE = (bs.laws.laws_dir() / "chinchilla.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "chinchilla"', "", "missing key(s) name"),
        (
            'formula = "E + A / N**alpha + B / D**beta"',
            'formula = "E + A / N**alpha + B / D**beta + os.system"',
            "attribute access is not allowed",
        ),
        (
            'formula = "E + A / N**alpha + B / D**beta"',
            'formula = "E + A / N**alpha + B / D**gamma"',
            "unknown name 'gamma'",
        ),
        (
            'formula = "E + A / N**alpha + B / D**beta"',
            'formula = "E + A / N**alpha"',
            "does not use parameter(s) B, beta",
        ),
        ("D = 2e10", "D = -1", 'one positive finite number (or "data") per input'),
        ("D = 2e10", "D = inf", 'one positive finite number (or "data") per input'),
        ('inputs = ["N", "D"]', 'inputs = "N"', "'inputs' must be a list"),
        (
            'dist = "Normal", kwargs = { mu = -1.0',
            'dist = "Normall", kwargs = { mu = -1.0',
            "unknown distribution 'Normall'",
        ),
        ('alpha = "alpha"', 'alpha = "2 * alpha"', "share a sampled name but are not equal to it"),
        ('citation = "', 'import_path = "x"\ncitation = "', "unknown key(s) import_path"),
        ("[scales]", "[scales", "invalid TOML"),
        ('E = "E"', 'E = "E"\nsigma = "alpha"', "['sigma'] are names the model uses itself"),
        ('E = "E"', 'E = "E"\nN_log = "alpha"', "['N_log'] are names the model uses itself"),
        ('E = "E"', 'E = "E"\nN = "alpha"', "['N'] are inputs; a parameter or definition cannot reuse the name"),
    ],
)
def test_malformed_law_files(old, new, message):
    assert old in BASE
    with pytest.raises(LawError) as info:
        Law.from_toml(BASE.replace(old, new, 1))
    assert message in str(info.value)


def test_custom_formula_law():
    law = Law.from_formula(
        "E + A * N**-alpha",
        inputs=["N"],
        priors={"E": "LogNormal(0.5, 0.4)", "A": "LogNormal(6, 2)", "alpha": "LogNormal(-1.2, 0.5)"},
    )
    assert law.params == ("A", "E", "alpha") and law.inputs == ("N",)
    assert law.evaluate({"E": 1.7, "A": 400.0, "alpha": 0.34}, N=1e9) == pytest.approx(1.7 + 400 * 1e9**-0.34)
    rebuilt = Law.from_toml(law.source)  # saved fits rebuild a formula law from its generated text
    assert (rebuilt.params, rebuilt.inputs, rebuilt.priors) == (law.params, law.inputs, law.priors)
    assert rebuilt.evaluate({"E": 1.7, "A": 400.0, "alpha": 0.34}, N=1e9) == pytest.approx(1.7 + 400 * 1e9**-0.34)


@pytest.mark.parametrize(
    ("formula", "priors", "message"),
    [
        ("E + __import__('os').system('x')", {}, "call of \"__import__('os').system\" is not allowed"),
        ("E + A * N.real", {}, "attribute access is not allowed at column 8: `N.real`"),
        ("E + A * N**-alpha", {"E": "Normal(1, 1)"}, "priors missing for ['A', 'alpha']"),
        ("E + N", {"E": "Normal(1, 1)", "F": "Normal(0, 1)"}, "given for unknown ['F']"),
        ("E + N", {"E": "Wishart(1)"}, "unknown distribution 'Wishart'"),
        ("E + (N", {}, "syntax error"),
    ],
)
def test_custom_formula_errors(formula, priors, message):
    with pytest.raises((LawError, bs.PriorError)) as info:
        Law.from_formula(formula, inputs=["N"], priors=priors)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("name", "target", "columns"),
    [
        ("sigmoid_compute", "rc_acc", {"C": "compute_flops", "chance": "chance_acc"}),
        ("broken_sigmoid", "rc_acc", {"C": "compute_flops", "chance": "chance_acc"}),
        ("sigmoid_loss", "rc_acc", {"L": "rc_bpb", "chance": "chance_acc"}),
        ("log_linear", "rc_soft_log", {"C": "compute_flops"}),
    ],
)
def test_prior_predictive_covers_real_downstream_targets(name, target, columns):
    """The default priors of the accuracy and real-valued laws, with the observation model's noise, put the
    OLMo ladder's 640 real task accuracies (or log-probabilities) inside their 90% prior predictive band,
    without being vacuous: the band of an accuracy is narrower than the room above chance, that of a
    real-valued target narrower than 12 units (its defaults are for targets of order one)."""
    runs = bs.load_dataset("bhagia2024")
    law = bs.load_law(name)
    y = runs[target].to_numpy()
    lo, hi, _ = prior_band(law, {k: runs[columns[k]].to_numpy() for k in law.inputs}, y)
    inside = np.mean((y >= lo) & (y <= hi))
    assert inside >= 0.95, f"only {inside:.0%} of real {target} inside the 90% prior predictive band"
    room = 1 - runs["chance_acc"].to_numpy() if law.target == "bounded" else 12.0
    assert np.median((hi - lo) / room) < 0.95
