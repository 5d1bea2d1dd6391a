"""The law catalogue: TOML files in ``models/laws`` parsed into frozen :class:`Law` objects."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .expr import Expression, ExpressionError
from .priors import Prior, PriorError

__all__ = ["Law", "LawError", "load_law", "list_laws", "laws_dir"]


class LawError(ValueError):
    """A law that cannot be found or whose file is malformed."""


def laws_dir() -> Path:
    """The folder of bundled law files (inside the wheel, or ``models/laws`` in a source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_models" / "laws", here.parent / "models" / "laws"):
        if candidate.is_dir():
            return candidate
    raise LawError(f"no law catalogue found next to {here}")


_REQUIRED = ("name", "formula", "inputs", "scales", "model", "natural", "citation")
_OPTIONAL = ("title", "compute")


@dataclass(frozen=True, eq=False)
class Law:
    """A scaling law: its published formula, the form that is sampled, default priors and provenance.

    ``formula`` is written in the published (natural) parameters and raw inputs. ``model_formula`` is
    the well-conditioned form NUTS samples: its inputs are divided by the reference ``scales`` and its
    parameters are the keys of ``priors``. ``natural`` maps each published parameter to an expression
    of the sampled ones (and of ``<input>_ref``).
    """

    name: str
    title: str
    citation: str
    formula: Expression
    inputs: tuple[str, ...]
    scales: Mapping[str, float]
    compute: Expression
    model_formula: Expression
    priors: Mapping[str, Prior]
    natural: Mapping[str, Expression]
    source: str

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
        name = raw["name"]
        inputs = tuple(raw["inputs"])
        if not inputs or len(set(inputs)) != len(inputs) or not all(isinstance(i, str) for i in inputs):
            raise LawError(f"law {name!r}: 'inputs' must be a list of distinct names, got {raw['inputs']!r}")
        scales = raw["scales"]
        if set(scales) != set(inputs) or not all(isinstance(v, int | float) and v > 0 for v in scales.values()):
            raise LawError(f"law {name!r}: [scales] must give one positive number per input {list(inputs)}")
        model = raw["model"]
        if set(model) != {"formula", "priors"}:
            raise LawError(f"law {name!r}: [model] must have exactly 'formula' and 'priors'")
        try:
            priors = {p: Prior.from_spec(p, spec) for p, spec in model["priors"].items()}
        except PriorError as err:
            raise LawError(f"law {name!r}: {err}") from None
        clash = set(priors) & set(inputs)
        if clash:
            raise LawError(f"law {name!r}: {sorted(clash)} named both as input and parameter")
        refs = [f"{i}_ref" for i in inputs]
        try:
            model_formula = Expression.parse(model["formula"], [*inputs, *priors], what=f"law {name!r} model formula")
            natural = {
                p: Expression.parse(e, [*priors, *refs], what=f"law {name!r} natural parameter {p!r}")
                for p, e in raw["natural"].items()
            }
            formula = Expression.parse(raw["formula"], [*inputs, *natural], what=f"law {name!r} formula")
            compute = Expression.parse(raw.get("compute", "6 * N * D"), inputs, what=f"law {name!r} compute")
        except ExpressionError as err:
            raise LawError(str(err)) from None
        renamed = [p for p in set(natural) & set(priors) if natural[p].text != p]
        if renamed:
            raise LawError(f"law {name!r}: natural parameter(s) {renamed} share a sampled name but are not equal to it")
        for label, expr, declared in (("model formula", model_formula, priors), ("formula", formula, natural)):
            unused = set(declared) - expr.names
            if unused:
                raise LawError(f"law {name!r}: {label} does not use parameter(s) {', '.join(sorted(unused))}")
        return cls(
            name=name,
            title=raw.get("title", name),
            citation=raw["citation"],
            formula=formula,
            inputs=inputs,
            scales={k: float(scales[k]) for k in inputs},
            compute=compute,
            model_formula=model_formula,
            priors=priors,
            natural=natural,
            source=text,
        )

    # ----------------------------------------------------------------------------------- evaluation
    @property
    def sampled_params(self) -> tuple[str, ...]:
        return tuple(self.priors)

    @property
    def params(self) -> tuple[str, ...]:
        """The published (natural-unit) parameter names."""
        return tuple(self.natural)

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def _inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        missing = [i for i in self.inputs if i not in inputs]
        extra = [i for i in inputs if i not in self.inputs]
        if missing or extra:
            raise LawError(f"law {self.name!r} takes inputs {list(self.inputs)}; missing {missing}, unknown {extra}")
        return {k: np.asarray(inputs[k], dtype=float) for k in self.inputs}

    def evaluate(self, params: Mapping[str, Any], **inputs: Any) -> np.ndarray:
        """Loss from the published formula, with natural-unit ``params`` (numpy, broadcasting)."""
        missing = [p for p in self.params if p not in params]
        if missing:
            raise LawError(f"law {self.name!r}: no value for parameter(s) {', '.join(missing)}")
        env = {p: np.asarray(params[p], dtype=float) for p in self.params}
        return self.formula.evaluate({**env, **self._inputs(inputs)})

    def evaluate_sampled(self, sampled: Mapping[str, Any], **inputs: Any) -> np.ndarray:
        """Loss from the sampled form, with sampled parameters and raw (unscaled) inputs."""
        scaled = {k: v / self.scales[k] for k, v in self._inputs(inputs).items()}
        env = {p: np.asarray(sampled[p], dtype=float) for p in self.sampled_params}
        return self.model_formula.evaluate({**env, **scaled})

    def to_natural(self, sampled: Mapping[str, Any], backend: str = "numpy") -> dict[str, Any]:
        """Published parameters from sampled ones."""
        env = {**sampled, **{f"{k}_ref": v for k, v in self.scales.items()}}
        return {p: expr.evaluate(env, backend) for p, expr in self.natural.items()}

    def compute_flops(self, **inputs: Any) -> np.ndarray:
        return self.compute.evaluate(self._inputs(inputs))

    def __repr__(self) -> str:
        return f"Law({self.name!r}: {self.formula})"


def list_laws() -> list[str]:
    """Names of the bundled laws."""
    return sorted(p.stem for p in laws_dir().glob("*.toml"))


def load_law(name_or_path: str | Path | Law) -> Law:
    """A bundled law by name, or a law file by path."""
    if isinstance(name_or_path, Law):
        return name_or_path
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = laws_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise LawError(f"unknown law {str(name_or_path)!r}; known laws: {', '.join(list_laws())}")
    elif not path.is_file():
        raise LawError(f"law file {str(path)!r} does not exist")
    return Law.from_toml(path.read_text(), origin=str(path))
