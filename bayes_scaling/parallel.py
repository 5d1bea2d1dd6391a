"""Many independent fits: one after another in this process, or spread over a Dask cluster.

Wherever a function takes ``client`` (:func:`~bayes_scaling.backtest`, :func:`~bayes_scaling.stack`,
:func:`~bayes_scaling.sbc.sbc`, :func:`run_tasks`):

- ``None`` (default): in this process, one fit after another; compiled models are reused across the fits
  and each fit's chains already run on every core;
- ``"local"``: a ``dask.distributed`` LocalCluster of processes, one thread each, one per core, closed
  when the work is done;
- a scheduler address (``"tcp://10.0.0.5:8786"``): a running cluster (dask-jobqueue on Slurm or PBS, the
  Dask Kubernetes operator, ``dask scheduler`` / ``dask worker`` by hand);
- a ``distributed.Client``: used as it is, left open.

Each worker process keeps its own compile cache, so a law compiles once per worker. Results come back in
the order of the tasks, whatever order they finish in, and are the same as a serial run's with the same
seeds. A task that raises is recorded as its :class:`Outcome`'s ``error`` instead of sinking the batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .errors import MissingDependencyError, OptionError

__all__ = ["Outcome", "raise_if_all_failed", "run_tasks"]

log = logging.getLogger("bayes_scaling")


@dataclass(frozen=True)
class Outcome:
    """One task's result: its ``value``, or the ``error`` it raised (type and message; the exception itself
    in ``exception``) and no value."""

    value: Any = None
    error: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def failed(cls, err: BaseException) -> Outcome:
        return cls(error=f"{type(err).__name__}: {err}", exception=err)


def raise_if_all_failed(outcomes: Sequence[Outcome]) -> None:
    """One failing task is a row; every task failing is the caller's error (a missing column, a bad
    option): raise the first, as a single fit would."""
    if outcomes and all(o.error for o in outcomes):
        first = outcomes[0].exception
        raise first if first is not None else RuntimeError(outcomes[0].error)


def _guarded(func: Callable[[Any], Any], task: Any) -> Outcome:
    try:
        return Outcome(func(task))
    except Exception as err:  # recorded in the task's row: one failing fit must not sink the batch
        return Outcome.failed(err)


@contextmanager
def _connected(client: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``client`` ("local", an address or a Client), closed afterwards if made here."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MissingDependencyError("client= needs dask.distributed: pip install 'bayes-scaling[dask]'") from None
    if isinstance(client, Client):
        yield client
    elif client == "local":
        cluster = LocalCluster(
            n_workers=os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        with cluster, Client(cluster) as made:
            yield made
    elif isinstance(client, str):
        try:
            made = Client(client, timeout="10s")
        except (OSError, TimeoutError, ValueError) as err:
            raise OptionError(f"client={client!r}: no Dask scheduler could be reached there ({err})") from None
        with made:
            yield made
    else:
        raise OptionError(f"client must be None, 'local', a scheduler address or a distributed.Client; got {client!r}")


def run_tasks(
    func: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    client: Any = None,
    desc: str = "fits",
    progressbar: bool = True,
) -> list[Outcome]:
    """``func(task)`` for every task, here or on a Dask cluster (see the module's notes on ``client``); the
    outcomes in the order of ``tasks``. On a cluster ``func``, its tasks and its results travel by pickle (a
    function of an installed module by name, one defined in a script or notebook by value). Progress: a
    bar, and one log line per finished task."""
    from tqdm import tqdm

    total = len(tasks)
    outcomes: list[Outcome | None] = [None] * total
    with tqdm(total=total, desc=desc, disable=not progressbar) as bar:

        def record(i: int, outcome: Outcome, done: int) -> None:
            outcomes[i] = outcome
            bar.update()
            failed = f" (task {i + 1} failed: {outcome.error})" if outcome.error else ""
            log.info("%s %d/%d done%s", desc, done, total, failed)

        if client is None:
            for i, task in enumerate(tasks):
                record(i, _guarded(func, task), i + 1)
        else:
            from distributed import as_completed

            with _connected(client) as connected:
                futures = connected.map(partial(_guarded, func), list(tasks), pure=False)
                where = {future.key: i for i, future in enumerate(futures)}
                for done, future in enumerate(as_completed(futures), 1):
                    try:
                        outcome = future.result()
                    except Exception as err:  # the worker died (killed, out of memory)
                        outcome = Outcome.failed(err)
                    record(where[future.key], outcome, done)
    return [outcome for outcome in outcomes if outcome is not None]
