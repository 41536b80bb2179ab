"""The executor seam: where a retraining run's work happens, off the request path.

The runner (:mod:`watchkeeper.retrain.runner`) decides *when* a run starts and what follows
its outcome; an :class:`Executor` does one attempt of it. Two kinds exist (a model's
``retrain.executor.kind``):

- ``local`` (:class:`LocalProcessExecutor`): a worker process of this server (spawned, one at
  a time) assembles the data, calls the training function, gates and registers the candidate,
  and the outcome comes back through the ``done`` callback;
- ``webhook`` (``watchkeeper.retrain.webhook``): posts the job (:meth:`RetrainJob.to_dict`) to
  an orchestrator and answers :attr:`Handoff.AWAITING_ARTIFACT`; the orchestrator trains and
  posts the artifact to ``POST /v1/retrain/runs/{id}/artifact``, and the runner then gives a
  job carrying that artifact to the local executor, which gates and registers it.

An executor reports an attempt with a :class:`JobResult`: the pipeline's outcome (a
:class:`~watchkeeper.retrain.pipeline.RetrainRun` as a dict) or an ``error`` (the attempt did
not complete: a crashed worker, an unreachable orchestrator), which the runner retries with
backoff.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from watchkeeper.retrain.runs import RetrainJob

__all__ = [
    "Done",
    "Executor",
    "Handoff",
    "JobResult",
    "LocalProcessExecutor",
    "Resumable",
    "run_job",
]

logger = logging.getLogger("watchkeeper.retrain")


class Handoff(StrEnum):
    """What :meth:`Executor.submit` did with the job."""

    RUNNING = "running"  # it runs; ``done`` will be called with its result
    AWAITING_ARTIFACT = "awaiting_artifact"  # handed over; the artifact comes back by the API


@dataclass(frozen=True, slots=True)
class JobResult:
    """One attempt's result: the pipeline's outcome, or why the attempt did not complete.

    ``outcome`` is :meth:`RetrainRun.to_dict` (status registered, rejected or failed);
    ``error`` is set instead when no outcome came (the runner retries it). ``log`` is the
    attempt's text (the pipeline's steps and the training function's output).
    """

    run_id: int
    attempt: int
    outcome: Mapping[str, Any] | None = None
    error: str = ""
    log: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


#: Called once per submitted job whose handoff was :attr:`Handoff.RUNNING`, from any thread.
Done = Callable[[JobResult], None]


class Executor(Protocol):
    """Runs retraining jobs off the request path."""

    @property
    def kind(self) -> str:
        """The name models give in ``retrain.executor.kind``."""
        ...

    def submit(self, job: RetrainJob, done: Done) -> Handoff:
        """Start ``job``; with :attr:`Handoff.RUNNING`, call ``done`` once when it ends.

        Raises (any exception) when the job could not be handed over at all; the runner
        records that as the attempt's error and retries.
        """
        ...

    def close(self) -> None:
        """Stop taking jobs and release the executor's resources."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """An executor that holds handed-over runs across restarts (the webhook's deadlines)."""

    def resume(self, done: Done) -> int:
        """At start: take up the runs a previous process handed over; how many."""
        ...


class LocalProcessExecutor:
    """Jobs in one spawned worker process of this server, one at a time.

    The worker opens the store at ``db_url`` and the artifact store at ``artifact_root``
    itself (so ``db_url`` must name a database another process can open: a SQLite file or
    PostgreSQL, not ``:memory:``). A worker that dies (killed, out of memory) fails the job it
    ran with an error, and the next job gets a new worker; a worker whose server died exits.
    """

    kind = "local"

    def __init__(self, db_url: str, artifact_root: str, *, workers: int = 1) -> None:
        self._db_url = db_url
        self._artifact_root = artifact_root
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, job: RetrainJob, done: Done) -> Handoff:
        """Run ``job`` in the worker process; ``done`` gets its result (or the crash)."""
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_follow_parent,
                    initargs=(os.getpid(),),
                )
            pool = self._pool
        try:
            future = pool.submit(run_job, self._db_url, self._artifact_root, job)
        except RuntimeError:  # a broken pool (its worker died): a new one for this job
            self._discard(pool)
            return self.submit(job, done)

        def finished(future: Future[JobResult]) -> None:
            try:
                result = future.result()
            except BaseException as error:  # the worker died or could not run the job
                self._discard(pool)
                result = JobResult(
                    job.run_id, job.attempt, error=f"worker: {type(error).__name__}: {error}"
                )
            done(result)

        future.add_done_callback(finished)
        return Handoff.RUNNING

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker; a job it runs is abandoned (a restart finds its run interrupted)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()


_OPENED: dict[tuple[str, str], Any] = {}


def _follow_parent(parent: int) -> None:
    """In the worker: exit when the server that started it is gone (killed), so a restarted
    server's retry of the interrupted run never races this worker's registration."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="watchkeeper-retrain-parent", daemon=True).start()


def run_job(db_url: str, artifact_root: str, job: RetrainJob) -> JobResult:
    """One attempt of ``job`` (in the worker process): the pipeline, its output captured."""
    from watchkeeper.registry import ArtifactStore, Registry
    from watchkeeper.retrain.config import RetrainConfig
    from watchkeeper.retrain.pipeline import retrain
    from watchkeeper.store import Store

    key = (db_url, artifact_root)
    if key not in _OPENED:
        _OPENED[key] = (Store.open(db_url), ArtifactStore(artifact_root))
    store, artifacts = _OPENED[key]
    offset = job.clock_offset
    # The version is stamped on the server's clock (a simulated one in a replay or the demo).
    registry = Registry(store, artifacts, clock=lambda: time.time() + offset)
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        config = RetrainConfig.from_dict(job.config)
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            run = retrain(
                registry.store,
                registry,
                job.model,
                config.spec,
                now=job.as_of,
                trigger=job.trigger,
                run_id=job.run_id,
                artifact=job.artifact,
                log=lambda line: print(line, file=output),
            )
        return JobResult(job.run_id, job.attempt, outcome=run.to_dict(), log=output.getvalue())
    except Exception as error:  # anything the pipeline did not turn into an outcome
        detail = traceback.format_exc(limit=8)
        return JobResult(
            job.run_id,
            job.attempt,
            error=f"{type(error).__name__}: {error}",
            log=output.getvalue() + detail,
        )
    finally:
        root.removeHandler(handler)
