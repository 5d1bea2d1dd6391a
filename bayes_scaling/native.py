"""nutpie's numba model of a PyMC model, with its C entry points cached on disk.

nutpie calls a model's log density and its draws' expansion through two C functions (numba ``cfunc``\\ s)
wrapped around the functions PyTensor generates. PyTensor caches its own functions on disk, but nutpie's
wrappers hold the model's data arrays as constants, so numba cannot cache them and every new process spends
3-4 s compiling them again (most of a fit's compile time). The wrappers here read every data array from
nutpie's ``user_data`` record instead, so they hold no process-specific constants, and are registered with
PyTensor's cache under a key made of PyTensor's own key for the wrapped function, the wrapper's source and
the record's layout: a second process with the same model loads them in a tenth of a second.

Before its numba code is loaded, PyTensor rewrites the model's graphs (0.8-1 s in every process): the
rewritten graphs are kept on disk too, beside PyTensor's cache, under the model's key and this package's
source (:func:`_functions`), and a later process builds its functions from them.

Everything else (the log density, its gradient, initial points, the draws' names and shapes) is nutpie's
own (``nutpie.compile_pymc``); :func:`compile_nutpie` returns the same ``CompiledPyMCModel`` nutpie's
``compile_pymc_model`` does, and falls back to it if nutpie's internals change.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import logging
import os
import pickle
import sys
import threading
import types
from importlib.metadata import version
from pathlib import Path
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
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    address_as_void_pointer = import_nutpie().compile_pymc.address_as_void_pointer

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


def compile_nutpie(model: Any, key: Any = None) -> Any:
    """nutpie's compiled form of ``model`` (as ``nutpie.compile_pymc_model(model)`` with its defaults), with
    C entry points that later processes load from the disk cache; without fast-math (:func:`exact_math`).
    ``key``: everything that shapes the model's graph (all but its data): its rewritten graphs are kept on
    disk under it (:func:`_functions`)."""
    nutpie = import_nutpie()
    with exact_math():
        try:
            return _compile(model, key)
        except (AttributeError, ImportError, TypeError) as err:  # nutpie's internals moved: its own route
            log.info("cached C entry points unavailable (%s); nutpie compiles its own", err)
            return nutpie.compile_pymc_model(model)


#: Part of every rewritten graph's file name: change it when what the files hold changes.
GRAPHS_VERSION = 1


@functools.cache
def _code_digest() -> str:
    """This package's source, the versions of the libraries that build and rewrite a model's graph and
    PyTensor's flags that change the rewrites: a graph kept on disk is used only by the code that made it."""
    import pytensor

    digest = hashlib.sha256(str(GRAPHS_VERSION).encode())
    for name in ("pymc", "pytensor", "nutpie", "numba", "numpy"):
        digest.update(f"{name} {version(name)}".encode())
    for flag in ("floatX", "cast_policy", "optimizer_including", "optimizer_excluding", "optimizer_requiring"):
        digest.update(f"{flag} {getattr(pytensor.config, flag)}".encode())  # flags that change the rewrites
    root = Path(__file__).parent
    for path in sorted(root.glob("*.py")):  # the laws and priors are in the key itself
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _graph_file(key: Any) -> Path:
    import pytensor

    name = hashlib.sha256(f"{_code_digest()}|{key!r}".encode()).hexdigest()[:32]
    return Path(pytensor.config.compiledir) / "bayes_scaling_graphs" / f"{name}.pkl"


def _functions(model: Any, initial: Any, key: Any) -> tuple:
    """nutpie's ``_make_functions`` of ``model``: its sizes, the log density's and the expansion's PyTensor
    functions, the initial point function, the variables' names and shapes, the transformed ones. PyTensor
    rewrites a model's graphs before it compiles them (0.8-1 s of a second process's fit, its numba code
    loaded from the disk cache); the rewritten graphs are kept on disk under ``key`` (in PyTensor's compile
    directory, beside its numba cache) and a later process builds the functions from them unrewritten."""
    cp = import_nutpie().compile_pymc
    path = _graph_file(key) if key is not None else None
    if path is not None and path.is_file():
        try:
            return _load_functions(model, initial, path)
        except Exception as err:  # a broken or foreign file can raise anything when unpickled: rebuilt below
            log.info("rewritten graphs in %s not usable (%s); rewriting anew", path, err)
    made = cp._make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=cp._wrap_with_lock(initial),
        var_names=None,
    )
    if path is not None:
        n_dim, n_expanded, logp_pt, expand_pt, _, shape_info, reparameterized = made
        graphs = (logp_pt.maker.fgraph, expand_pt.maker.fgraph, logp_pt.maker.mode, expand_pt.maker.mode)
        try:
            buffer = io.BytesIO()
            _GraphPickler(buffer).dump((*graphs, n_dim, n_expanded, shape_info, reparameterized))
            blob = buffer.getvalue()
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_bytes(blob)
            os.replace(temporary, path)  # whole or not at all: another process may read it now
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError) as err:
            log.info("rewritten graphs not kept on disk (%s)", err)
    return made


class _GraphPickler(pickle.Pickler):
    """Pickles rewritten graphs. Their data (shared variables: the runs) are kept empty, of their type: the
    runs of a fit are not copied into the cache, and a process that loads the graphs sets its own. An
    ``OpFromGraph`` (PyTensor's stable log-sum-exp is one) keeps the gradient it built in a local
    function, which pickle refuses: it is kept without it, as the graph it is part of is differentiated."""

    def reducer_override(self, obj: Any) -> Any:
        from pytensor.compile.builders import OpFromGraph
        from pytensor.tensor.sharedvar import TensorSharedVariable

        if isinstance(obj, TensorSharedVariable):
            return _empty_shared, (type(obj), obj.type, obj.name)
        if isinstance(obj, OpFromGraph):
            return object.__new__, (type(obj),), {**obj.__dict__, "_lop_op_cache": {}, "_rop_op_cache": None}
        return NotImplemented


def _empty_shared(cls: Any, type_: Any, name: str | None) -> Any:
    """A shared variable of ``type_`` holding no data (its static sizes, zero where it has none)."""
    shape = tuple(0 if size is None else size for size in type_.shape)
    return cls(type=type_, value=np.zeros(shape, dtype=type_.dtype), strict=False, name=name)


def _load_functions(model: Any, initial: Any, path: Path) -> tuple:
    """:func:`_functions` from the rewritten graphs in ``path``, with ``model``'s data."""
    from pytensor.compile.io import In
    from pytensor.compile.maker import FunctionMaker
    from pytensor.compile.sharedvalue import SharedVariable

    cp = import_nutpie().compile_pymc
    logp_graph, expand_graph, logp_mode, expand_mode, n_dim, n_expanded, shape_info, reparameterized = pickle.loads(
        path.read_bytes()
    )

    def function(graph: Any, mode: Any) -> Any:
        inputs = [
            In(v, value=v.container, implicit=True) if isinstance(v, SharedVariable) else In(v) for v in graph.inputs
        ]
        made = FunctionMaker(
            inputs, list(graph.outputs), mode=mode, fgraph=graph, no_fgraph_prep=True, accept_inplace=True
        ).create()
        for var in made.get_shared():  # the data of the model at hand, not of the one the graphs were made for
            var.set_value(model[var.name].get_value())
        return made

    logp_pt, expand_pt = function(logp_graph, logp_mode), function(expand_graph, expand_mode)
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    shapes = dict(zip(shape_info[0], shape_info[2], strict=True))
    initial_point_fn = cp._rv_dict_to_flat_array_wrapper(
        cp._wrap_with_lock(initial), names=names, shapes=[shapes[n] for n in names]
    )
    log.info("rewritten graphs loaded from %s", path)
    return n_dim, n_expanded, logp_pt, expand_pt, initial_point_fn, shape_info, reparameterized


def _compile(model: Any, key: Any) -> Any:
    from pymc.initial_point import make_initial_point_fn

    cp = import_nutpie().compile_pymc
    initial = make_initial_point_fn(
        model=model,
        overrides=None,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    n_dim, n_expanded, logp_pt, expand_pt, initial_point_fn, shape_info, reparameterized = _functions(
        model, initial, key
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
