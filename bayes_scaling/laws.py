"""The law catalogue: TOML files in ``models/laws`` parsed into frozen :class:`Law` objects."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExpressionError, LawError, OptionError, PriorError
from .expr import Expression
from .observation import TARGETS
from .priors import Prior

__all__ = ["Law", "LawError", "laws_dir", "list_laws", "load_law"]


def laws_dir() -> Path:
    """The folder of bundled law files (inside the wheel, or ``models/laws`` in a source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_models" / "laws", here.parent / "models" / "laws"):
        if candidate.is_dir():
            return candidate
    raise LawError(f"no law catalogue found next to {here}")


_REQUIRED = ("name", "formula", "inputs", "scales", "model", "natural", "citation")
#: Names the model and its draws use for themselves (noise, discrepancy, data, dims); a law may not use them.
RESERVED = frozenset(
    {"sigma", "nu", "ell", "kappa", "z", "obs", "group", "group_idx", "lag_prev", "lag_gap", "C"}
    | {name for observed, _ in TARGETS.values() for name in (observed, f"{observed}_data")}
    | {"chain", "draw", "point", "budget", "distance"}
)
_OPTIONAL = ("title", "compute", "define", "optimal", "target", "covariates")
#: The TOML type of each key of a law file.
_TYPES: dict[str, type] = {
    **dict.fromkeys(("name", "formula", "citation", "title", "compute", "target"), str),
    **dict.fromkeys(("inputs", "covariates"), list),
    **dict.fromkeys(("scales", "model", "natural", "define", "optimal"), dict),
}


@dataclass(frozen=True, eq=False)
class Law:
    """A scaling law: its published formula, the form that is sampled, default priors and provenance.

    ``formula`` is written in the published (natural) parameters and raw inputs, with optional helper
    quantities ``define`` (evaluated in order). ``model_formula`` is the well-conditioned form NUTS
    samples: its inputs are divided by the reference ``scales`` and its parameters are the keys of
    ``priors``; without one, the model evaluates ``formula`` at the published parameters. ``natural``
    maps each published parameter to an expression of the sampled ones (and of ``<input>_ref``). A scale
    given as ``"data"`` in the file (None here) is set at fit time to the geometric mean of that input over
    the runs (:meth:`with_scales`). ``target`` is the kind of quantity the law predicts (a key of
    :data:`~bayes_scaling.observation.TARGETS`: ``positive`` by default, ``real`` or ``bounded``).
    ``covariates`` are inputs given as data rather than scaled (a task's random-guess accuracy): the
    model sees them as they are (reference scale 1), and they are no dimension of the distance beyond
    the runs.
    """

    name: str
    title: str
    citation: str
    formula: Expression
    inputs: tuple[str, ...]
    scales: Mapping[str, float | None]
    compute: Expression | None
    define: Mapping[str, Expression]
    model_formula: Expression | None
    optimal: Mapping[str, Expression]
    priors: Mapping[str, Prior]
    natural: Mapping[str, Expression]
    source: str
    target: str = "positive"
    covariates: tuple[str, ...] = ()

    # ----------------------------------------------------------------------------------- construction
    @classmethod
    def from_toml(cls, text: str, *, origin: str = "<string>") -> Law:
        """Parse and check the text of a law file."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise LawError(f"law file {origin}: invalid TOML: {err}") from None
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise LawError(f"law file {origin}: missing key(s) {', '.join(missing)}")
        unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
        if unknown:
            raise LawError(f"law file {origin}: unknown key(s) {', '.join(sorted(unknown))}")
        for key, kind in _TYPES.items():
            if key in raw and not isinstance(raw[key], kind):
                what = "a table" if kind is dict else "a list" if kind is list else "a string"
                raise LawError(f"law file {origin}: {key!r} must be {what}, got {raw[key]!r}")
        name = raw["name"]
        target = raw.get("target", "positive")
        if target not in TARGETS:
            raise LawError(f"law {name!r}: target must be one of {', '.join(map(repr, TARGETS))}, got {target!r}")
        inputs = tuple(raw["inputs"])
        if not inputs or not all(isinstance(i, str) for i in inputs) or len(set(inputs)) != len(inputs):
            raise LawError(f"law {name!r}: 'inputs' must be a list of distinct names, got {raw['inputs']!r}")
        covariates = tuple(raw.get("covariates", ()))
        if not all(isinstance(c, str) for c in covariates) or not set(covariates) < set(inputs):
            raise LawError(f"law {name!r}: 'covariates' must be some, not all, of the inputs {list(inputs)}")
        scales = {**raw["scales"], **dict.fromkeys(covariates, 1.0)}
        if set(raw["scales"]) & set(covariates):
            raise LawError(f"law {name!r}: covariates {list(covariates)} are taken as they are; give them no scale")
        if set(scales) != set(inputs) or not all(
            (isinstance(v, int | float) and 0 < v < math.inf) or v == "data" for v in scales.values()
        ):
            raise LawError(
                f'law {name!r}: [scales] must give one positive finite number (or "data") per input {list(inputs)}'
            )
        taken = sorted(set(inputs) & (RESERVED - {"C"}))  # C: an input, never a parameter
        if taken:
            raise LawError(f"law {name!r}: inputs {taken} are names the model uses itself; rename them")
        model = raw["model"]
        if "priors" not in model or not set(model) <= {"formula", "priors"}:
            raise LawError(f"law {name!r}: [model] must have 'priors' and may have 'formula', nothing else")
        if not isinstance(model["priors"], dict) or not model["priors"]:
            raise LawError(f"law {name!r}: [model.priors] must be a table with a prior per parameter")
        try:
            priors = {p: Prior.from_spec(p, spec) for p, spec in model["priors"].items()}
        except PriorError as err:
            raise LawError(f"law {name!r}: {err}") from None
        clash = set(priors) & set(inputs)
        if clash:
            raise LawError(f"law {name!r}: {sorted(clash)} named both as input and parameter")
        named = {*priors, *raw["natural"], *raw.get("define", {})}
        reserved = sorted(
            named & (RESERVED | {f"{i}_{suffix}" for i in inputs for suffix in ("ref", "log")})
            | {p for p in priors if p.endswith(("_sd", "_z", "_group", "_group_link"))}
        )
        if reserved:
            raise LawError(f"law {name!r}: {reserved} are names the model uses itself; rename them")
        shadow = sorted(set(inputs) & {*raw["natural"], *raw.get("define", {})})
        if shadow:
            raise LawError(f"law {name!r}: {shadow} are inputs; a parameter or definition cannot reuse the name")
        refs = [f"{i}_ref" for i in inputs]
        try:
            model_formula = (
                Expression.parse(model["formula"], [*inputs, *priors], what=f"law {name!r} model formula")
                if "formula" in model
                else None
            )
            natural = {
                p: Expression.parse(e, [*priors, *refs], what=f"law {name!r} natural parameter {p!r}")
                for p, e in raw["natural"].items()
            }
            define: dict[str, Expression] = {}
            for key, text_ in raw.get("define", {}).items():
                define[key] = Expression.parse(text_, [*inputs, *natural, *define], what=f"law {name!r} define {key!r}")
            formula = Expression.parse(raw["formula"], [*inputs, *natural, *define], what=f"law {name!r} formula")
            optimal = {
                k: Expression.parse(v, [*natural, "C"], what=f"law {name!r} optimal {k}")
                for k, v in raw.get("optimal", {}).items()
            }
            compute_text = raw.get("compute", "6 * N * D" if {"N", "D"} <= set(inputs) else None)
            compute = (
                None if compute_text is None else Expression.parse(compute_text, inputs, what=f"law {name!r} compute")
            )
        except ExpressionError as err:
            raise LawError(str(err)) from None
        if optimal and set(optimal) != {"N", "D"}:
            raise LawError(f"law {name!r}: [optimal] must give N and D as functions of the parameters and C")
        renamed = [p for p in set(natural) & set(priors) if natural[p].text != p]
        if renamed:
            raise LawError(f"law {name!r}: natural parameter(s) {renamed} share a sampled name but are not equal to it")
        published_names = formula.names.union(*(d.names for d in define.values()))
        checks: list[tuple[str, frozenset[str], Mapping[str, object]]] = [("formula", published_names, natural)]
        if model_formula:
            checks.append(("model formula", model_formula.names, priors))
        for label, used, declared in checks:
            unused = set(declared) - used
            if unused:
                raise LawError(f"law {name!r}: {label} does not use parameter(s) {', '.join(sorted(unused))}")
            idle = [i for i in inputs if i not in used]
            if idle:
                raise LawError(f"law {name!r}: {label} does not use its input(s) {idle}")
        return cls(
            name=name,
            title=raw.get("title", name),
            citation=raw["citation"],
            formula=formula,
            inputs=inputs,
            scales={k: None if scales[k] == "data" else float(scales[k]) for k in inputs},
            compute=compute,
            define=define,
            model_formula=model_formula,
            optimal=optimal,
            priors=priors,
            natural=natural,
            source=text,
            target=target,
            covariates=covariates,
        )

    @classmethod
    def from_formula(
        cls,
        formula: str,
        *,
        inputs: Sequence[str],
        priors: Mapping[str, Any],
        name: str = "custom",
        citation: str = "user-written formula",
        target: str = "positive",
    ) -> Law:
        """A law from a formula of your own, e.g. ``Law.from_formula("E + A * N**-alpha", inputs=["N"],
        priors={"E": "LogNormal(0.5, 0.4)", "A": "LogNormal(6, 2)", "alpha": "LogNormal(-1.2, 0.5)"})``.

        Every name in the formula that is not an input is a parameter and needs a prior. The model
        samples these parameters as written (no reparametrisation). ``target``: the kind of quantity
        predicted, ``"positive"`` (a loss), ``"real"`` or ``"bounded"`` (in (0, 1), e.g. accuracy).
        """
        inputs = list(inputs)
        try:
            found = Expression.parse(formula, None, what="formula").names
        except ExpressionError as err:
            raise LawError(str(err)) from None
        params = sorted(found - set(inputs))
        if not params:
            raise LawError(f"formula {formula!r} has no parameters (every name is an input): there is nothing to fit")
        unused = [i for i in inputs if i not in found]
        if unused:
            raise LawError(f"formula {formula!r} does not use its input(s) {unused}")
        missing = [p for p in params if p not in priors]
        unknown = [p for p in priors if p not in params]
        if missing or unknown:
            raise LawError(
                f"formula {formula!r} has parameters {params}; priors missing for {missing}, "
                f"given for unknown {unknown}"
            )
        specs = {p: Prior.from_spec(p, priors[p]).to_dict() for p in params}
        q = json.dumps
        lines = [
            f"name = {q(name)}",
            f"target = {q(target)}",
            f"citation = {q(citation)}",
            f"formula = {q(formula)}",
            f"inputs = {q(inputs)}",
            "",
            "[scales]",
            *(f'{i} = "data"' for i in inputs),
            "",
            "[model.priors]",
        ]
        for p, spec in specs.items():
            kwargs = ", ".join(f"{k} = {v!r}" for k, v in spec["kwargs"].items())
            lines.append(f"{p} = {{ dist = {q(spec['dist'])}, kwargs = {{ {kwargs} }} }}")
        lines += ["", "[natural]", *(f"{p} = {q(p)}" for p in params)]
        return cls.from_toml("\n".join(lines) + "\n", origin=f"formula {formula!r}")

    # ----------------------------------------------------------------------------------- evaluation
    @property
    def sampled_params(self) -> tuple[str, ...]:
        return tuple(self.priors)

    @property
    def params(self) -> tuple[str, ...]:
        """The published (natural-unit) parameter names."""
        return tuple(self.natural)

    @property
    def estimated_params(self) -> tuple[str, ...]:
        """The published parameters that depend on a sampled one (not constants such as a reference scale)."""
        return tuple(p for p, expr in self.natural.items() if expr.names & set(self.priors))

    @property
    def scaled_inputs(self) -> tuple[str, ...]:
        """The inputs that are not covariates: the dimensions of the distance beyond the runs."""
        return tuple(i for i in self.inputs if i not in self.covariates)

    @cached_property
    def logged_inputs(self) -> tuple[str, ...]:
        """The inputs the sampled form takes only through ``log(input)``: the model holds their logs as data,
        computed once instead of at every gradient (Porian's runs: 136 instead of 180 us a gradient)."""
        logged = self.model_formula.logged if self.model_formula is not None else frozenset()
        return tuple(i for i in self.inputs if i in logged)

    @cached_property
    def digest(self) -> str:
        """Identifies the law's text (a compiled model takes the reference scales as data)."""
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def with_scales(self, inputs: Mapping[str, Any]) -> Law:
        """The law with every ``"data"`` scale set from ``inputs`` (given scales or raw input arrays:
        a scalar is taken as the scale, an array by its geometric mean)."""
        scales = {
            k: v if v is not None else float(np.exp(np.mean(np.log(np.asarray(inputs[k], dtype=float)))))
            for k, v in self.scales.items()
        }
        return replace(self, scales=scales)

    def _check_scales(self) -> None:
        unset = [k for k, v in self.scales.items() if v is None]
        if unset:
            raise LawError(
                f"law {self.name!r}: the reference scale of {unset} comes from data; use law.with_scales(...)"
            )

    def check_inputs(self, names: Iterable[str]) -> None:
        """An :class:`OptionError` unless ``names`` are the law's inputs, naming those missing and unknown."""
        names = list(names)
        missing = [i for i in self.inputs if i not in names]
        unknown = [i for i in names if i not in self.inputs]
        if missing or unknown:
            raise OptionError(
                f"law {self.name!r} takes inputs {list(self.inputs)}; missing {missing}, unknown {unknown}"
            )

    def _inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self.check_inputs(inputs)
        return {k: np.asarray(inputs[k], dtype=float) for k in self.inputs}

    def evaluate(self, params: Mapping[str, Any], **inputs: Any) -> np.ndarray:
        """Loss from the published formula, with natural-unit ``params`` (numpy, broadcasting)."""
        missing = [p for p in self.params if p not in params]
        if missing:
            raise LawError(f"law {self.name!r}: no value for parameter(s) {', '.join(missing)}")
        env = {p: np.asarray(params[p], dtype=float) for p in self.params}
        return self._published(env, self._inputs(inputs), "numpy")

    def evaluate_sampled(self, sampled: Mapping[str, Any], **inputs: Any) -> np.ndarray:
        """Loss from the sampled form, with sampled parameters and raw (unscaled) inputs."""
        self._check_scales()
        scaled = {k: v / self.scales[k] for k, v in self._inputs(inputs).items()}
        return self.sampled_loss({p: np.asarray(sampled[p], dtype=float) for p in self.sampled_params}, scaled)

    def sampled_loss(
        self,
        sampled: Mapping[str, Any],
        scaled: Mapping[str, Any],
        backend: str = "numpy",
        scales: Mapping[str, Any] | None = None,
        logs: Mapping[str, Any] | None = None,
    ) -> Any:
        """The law at sampled parameters and inputs divided by their reference scales (numpy or pytensor).

        ``scales`` overrides the law's reference scales (the model passes them as data); ``logs`` gives the
        log of each of :attr:`logged_inputs` instead of its value (the model's data)."""
        if self.model_formula is not None:
            return self.model_formula.evaluate({**sampled, **scaled}, backend, logs)
        scales = scales or self.scales
        raw = {k: v * scales[k] for k, v in scaled.items()}
        return self._published(self.to_natural(sampled, backend, scales), raw, backend)

    def _published(self, params: Mapping[str, Any], inputs: Mapping[str, Any], backend: str) -> Any:
        env = {**params, **inputs}
        for key, expr in self.define.items():
            env[key] = expr.evaluate(env, backend)
        return self.formula.evaluate(env, backend)

    def to_natural(
        self, sampled: Mapping[str, Any], backend: str = "numpy", scales: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Published parameters from sampled ones (``scales`` overrides the reference scales)."""
        if scales is None:
            self._check_scales()
        env = {**sampled, **{f"{k}_ref": v for k, v in (scales or self.scales).items()}}
        return {p: expr.evaluate(env, backend) for p, expr in self.natural.items()}

    def compute_flops(self, **inputs: Any) -> np.ndarray:
        """Training compute from the law's compute formula (default 6 N D)."""
        if self.compute is None:
            raise LawError(f"law {self.name!r} has no compute formula (its inputs are {list(self.inputs)})")
        missing = sorted(self.compute.names - set(inputs))
        if missing:
            raise LawError(f"law {self.name!r}: compute formula {self.compute} needs {missing}")
        with np.errstate(all="ignore"):
            flops = np.asarray(
                self.compute.evaluate({k: np.asarray(inputs[k], dtype=float) for k in self.compute.names})
            )
        bad = np.flatnonzero(~(flops > 0) | ~np.isfinite(flops))
        if bad.size:
            at = ", ".join(
                f"{k}={np.broadcast_to(inputs[k], flops.shape).flat[bad[0]]:g}" for k in sorted(self.compute.names)
            )
            raise LawError(
                f"law {self.name!r}: compute formula {self.compute} gives {flops.flat[bad[0]]:g} at {at}; "
                "compute must be a positive number of FLOPs"
            )
        return flops

    def __repr__(self) -> str:
        return f"Law({self.name!r}: {self.formula})"


def list_laws() -> list[str]:
    """Names of the bundled laws."""
    return sorted(p.stem for p in laws_dir().glob("*.toml"))


def load_law(name_or_path: str | Path | Law) -> Law:
    """A bundled law by name, or a law file by path."""
    if isinstance(name_or_path, Law):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike):
        raise LawError(f"a law is a name, a law file's path or a Law, got {name_or_path!r:.80}")
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = laws_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise LawError(f"unknown law {str(name_or_path)!r}; known laws: {', '.join(list_laws())}")
    elif not path.is_file():
        raise LawError(f"law file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LawError(f"law file {str(path)!r} is not UTF-8 text (is it a law file?)") from None
    return Law.from_toml(text, origin=str(path))
