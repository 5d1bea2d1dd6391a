"""nutpie's numba model of a PyMC model, with its C entry points cached on disk.

nutpie calls a model's log density and its draws' expansion through two C functions (numba ``cfunc``\\ s)
wrapped around the functions PyTensor generates. PyTensor caches its own functions on disk, but nutpie's
wrappers hold the model's data arrays as constants, so numba cannot cache them and every new process spends
3-4 s compiling them again (most of a fit's compile time). The wrappers here read every data array from
nutpie's ``user_data`` record instead, so they hold no process-specific constants, and are registered with
PyTensor's cache under a key made of PyTensor's own key for the wrapped function, the wrapper's source and
the record's layout: a second process with the same model loads them in a tenth of a second.

Everything else (the log density, its gradient, initial points, the draws' names and shapes) is nutpie's
own (``nutpie.compile_pymc``); :func:`compile_nutpie` returns the same ``CompiledPyMCModel`` nutpie's
``compile_pymc_model`` does, and falls back to it if nutpie's internals change.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import sys
import types
from typing import Any

import numpy as np

__all__ = ["compile_nutpie", "import_nutpie"]

log = logging.getLogger("bayes_scaling")

#: Part of every cache key (with the source): change it when what the source does not show changes (its globals).
WRAPPER_VERSION = 1

#: The two C entry points nutpie calls: arguments, the guard on the sizes nutpie passes, the body after the
#: inputs are unpacked ({call} is the wrapped function's call), the code returned when it raises.
_ENTRIES = {
    "logp": (
        "dim, x_, out_, logp_, user_data_",
        "dim != {n_dim}",
        [
            "value, grad = {call}",
            "logp = numba.carray(logp_, ())",
            "logp[()] = value",
            "out = numba.carray(out_, ({n_dim},))",
            "out[...] = grad",
            "if not np.all(np.isfinite(out)):",
            "    return 3",
            "if not np.isfinite(value):",
            "    return 4",
        ],
        1,
    ),
    "expand": (
        "dim, expanded, x_, out_, user_data_",
        "dim != {n_dim} or expanded != {n_out}",
        ["(values,) = {call}", "out = numba.carray(out_, ({n_out},))", "out[...] = values"],
        -2,
    ),
}


def _source(kind: str, n_dim: int, n_out: int, shared: list[tuple[str, int]]) -> str:
    """Source of the C entry point ``kind`` (as nutpie's own): unpack x and every shared array from
    ``user_data`` (``shared``: each array's key there and its number of dimensions), call ``inner``."""
    args, guard, body, failed = _ENTRIES[kind]
    lines = ["x = numba.carray(x_, ({n_dim},))", "ud = numba.carray(user_data_, (), RECORD)"]
    for i, (key, ndim) in enumerate(shared):
        shape = "".join(f"int(ud['shared']['shape']['{key}'][{d}]), " for d in range(ndim))
        pointer = f"address_as_void_pointer(ud['shared']['data']['{key}'][()])"
        lines.append(f"s{i} = numba.carray({pointer}, ({shape}), DTYPES[{i}])")
    call = f"inner(x{''.join(f', s{i}' for i in range(len(shared)))})"
    code = "\n".join(f"        {line}" for line in [*lines, *body])
    text = f"def entry({args}):\n    if {guard}:\n        return -1\n    try:\n{code}\n    except Exception:\n"
    return (text + f"        return {failed}\n    return 0\n").replace("{call}", call).format(n_dim=n_dim, n_out=n_out)


def _entry(kind: str, function: Any, shared_keys: list[str], shared_data: dict, record: np.dtype, sizes: tuple) -> Any:
    """The C entry point ``kind`` around PyTensor's ``function`` (a numba dispatcher), cached on disk when
    PyTensor caches ``function``."""
    import numba

    address_as_void_pointer = import_nutpie().compile_pymc.address_as_void_pointer
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    n_dim, n_out = sizes
    src = _source(kind, n_dim, n_out, [(k, shared_data[k].ndim) for k in shared_keys])
    dtypes = tuple(shared_data[k].dtype for k in shared_keys)
    env = {
        "__name__": __name__,  # numba names the cached code's module: this one, importable in any process
        "numba": numba,
        "np": np,
        "RECORD": record,
        "DTYPES": dtypes,
        "address_as_void_pointer": address_as_void_pointer,
        "inner": function,
    }
    exec(compile(src, f"<bayes_scaling {kind} entry>", "exec"), env)  # the source built above
    entry = env["entry"]
    inner_key = CACHED_SRC_FUNCTIONS.get(function.py_func)
    if inner_key is not None:
        text = "|".join(map(str, (WRAPPER_VERSION, import_nutpie().__version__, inner_key, src, record.descr, dtypes)))
        CACHED_SRC_FUNCTIONS[entry] = hashlib.sha256(text.encode()).hexdigest()
    c = numba.types.CPointer(numba.types.double)
    u64, i64 = numba.types.uint64, numba.types.int64
    signature = i64(u64, c, c, c, numba.types.voidptr) if kind == "logp" else i64(u64, u64, c, c, numba.types.voidptr)
    return numba.cfunc(signature, cache=inner_key is not None)(entry)


class _ArvizOnDemand(types.ModuleType):
    """Stands in for ``arviz`` while nutpie is imported. nutpie's sampler module imports arviz, and with it
    arviz's statistics and plots (matplotlib, scipy.stats: 1.5-2 s a process), to call two functions of
    arviz_base when it returns the draws. A name is looked up in arviz_base when it has it (arviz re-exports
    arviz_base's functions: the same objects), else in arviz itself, imported then."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or sys.modules.get("arviz") is self:  # never arviz_base's module attributes
            raise AttributeError(name)
        base = importlib.import_module("arviz_base")
        return getattr(base, name) if hasattr(base, name) else getattr(importlib.import_module("arviz"), name)


def import_nutpie() -> Any:
    """The ``nutpie`` module, imported without importing arviz (:class:`_ArvizOnDemand`): every import of
    nutpie in this package goes through here. ``import arviz`` anywhere, before or after, gets arviz itself."""
    if "nutpie" not in sys.modules and "arviz" not in sys.modules:
        sys.modules["arviz"] = _ArvizOnDemand("arviz")
        try:
            importlib.import_module("nutpie")
        finally:
            if isinstance(sys.modules.get("arviz"), _ArvizOnDemand):
                del sys.modules["arviz"]
    return importlib.import_module("nutpie")


def exact_math() -> Any:
    """A context in which PyTensor compiles numba code without fast-math: with it, LLVM reorders floating
    point operations differently when a function is compiled fresh (its callees inlined) than when it is
    loaded from the disk cache, so the same seed gave other draws in a process that compiled the model than
    in one that loaded it (a fifth slower per gradient on Porian's runs; reproducible draws come first)."""
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def compile_nutpie(model: Any) -> Any:
    """nutpie's compiled form of ``model`` (as ``nutpie.compile_pymc_model(model)`` with its defaults), with
    C entry points that later processes load from the disk cache; without fast-math (:func:`exact_math`)."""
    nutpie = import_nutpie()

    with exact_math():
        try:
            return _compile(model)
        except (AttributeError, ImportError, TypeError) as err:  # nutpie's internals moved: its own route
            log.info("cached C entry points unavailable (%s); nutpie compiles its own", err)
            return nutpie.compile_pymc_model(model)


def _compile(model: Any) -> Any:
    from pymc.initial_point import make_initial_point_fn

    cp = import_nutpie().compile_pymc
    initial = make_initial_point_fn(
        model=model,
        overrides=None,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    n_dim, n_expanded, logp_pt, expand_pt, initial_point_fn, shape_info, reparameterized = cp._make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=cp._wrap_with_lock(initial),
        var_names=None,
    )
    shared_data: dict[str, np.ndarray] = {}
    shared_var_keys: dict[Any, str] = {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if var not in shared_var_keys:  # keys fixed by order, not random: part of the cached code's layout
            key = f"s{len(shared_data)}"
            shared_data[key] = np.array(var.get_value(), order="C", copy=True)
            shared_data[key].flags.writeable = False
            shared_var_keys[var] = key
    user_data = cp.make_user_data(shared_var_keys, shared_data)
    logp, expand = (
        _entry(kind, fn.vm.jit_fn, [shared_var_keys[v] for v in fn.get_shared()], shared_data, user_data.dtype, sizes)
        for kind, fn, sizes in (("logp", logp_pt, (n_dim, 0)), ("expand", expand_pt, (n_dim, n_expanded)))
    )
    dims, coords = cp._prepare_dims_and_coords(model, shape_info, reparameterized)
    return cp.CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp,
        compiled_expand_func=expand,
        initial_point_func=initial_point_fn,
        shared_data=shared_data,
        shared_var_keys=shared_var_keys,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_pt,
        expand_func=expand_pt,
        reparameterized_names=reparameterized,
    )
