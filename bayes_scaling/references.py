"""Published fits of the bundled laws: ``models/references/*.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .laws import Law, LawError, laws_dir, load_law

__all__ = ["Reference", "list_references", "load_reference"]


@dataclass(frozen=True)
class Reference:
    """A law with the parameter values a paper published for it."""

    name: str
    law: Law
    params: dict[str, float]
    description: str
    citation: str

    def evaluate(self, **inputs: Any) -> np.ndarray:
        """The published curve at ``inputs``."""
        return self.law.evaluate(self.params, **inputs)


def _folder():
    return laws_dir().parent / "references"


def list_references() -> list[str]:
    """Names of the bundled published fits."""
    return sorted(p.stem for p in _folder().glob("*.toml"))


def load_reference(name: str) -> Reference:
    """A published fit by name, e.g. ``"hoffmann2022"``; ``Reference.law.evaluate(ref.params, ...)``."""
    path = _folder() / f"{name}.toml"
    if not path.is_file():
        raise LawError(f"unknown reference {name!r}; known references: {', '.join(list_references())}")
    raw = tomllib.loads(path.read_text())
    law = load_law(raw["law"])
    params = {k: float(v) for k, v in raw["params"].items()}
    if set(params) != set(law.params):
        raise LawError(f"reference {name!r} gives {sorted(params)}, law {law.name!r} has {sorted(law.params)}")
    return Reference(name, law, params, raw["description"], raw["citation"])
