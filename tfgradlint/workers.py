"""Worker processes for a run over many files, each addressed on its own.

A ``concurrent.futures`` pool hands a task to whichever worker is free; the runner wants
more control than that: a file's project summary and its lint go to the *same* worker,
which still holds what the summary computed (the file's statement layout,
tfgradlint/slicing.py ``analysed``), so the second step does not redo the first. Each
worker has its own task queue (``multiprocessing.Queue``: its feeder thread buffers, so
sending never blocks the runner) and its own result pipe (a worker's exit, even a crash,
closes it: its unfinished tasks fail with :class:`WorkerDied`).

Workers are forked where that is safe (Linux, no other thread yet), so they start with
everything the runner has imported and read; elsewhere they are spawned.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Optional


class WorkerDied(Exception):
    """The worker running the task exited before answering (a crash, out of memory...)."""


class Task:
    """One call sent to a worker; ``result()`` waits for it (collecting other answers)."""

    __slots__ = ("pool", "worker", "cost", "done", "ok", "value")

    def __init__(self, pool: "WorkerPool", worker: int, cost: int) -> None:
        self.pool = pool
        self.worker = worker
        self.cost = cost
        self.done = False
        self.ok = False
        self.value: Any = None

    def result(self) -> Any:
        while not self.done:
            self.pool.collect(block=True)
        if not self.ok:
            raise self.value
        return self.value


def _serve(tasks: Any, results: Any) -> None:
    """A worker's loop: run each task, answer (ok, value); None ends it."""
    import pickle

    while True:
        item = tasks.get()
        if item is None:
            break
        task_id, fn, args = pickle.loads(item)
        try:
            answer = (task_id, True, fn(*args))
        except BaseException as exc:  # reported to the runner, which decides
            answer = (task_id, False, _picklable_error(exc))
        try:
            results.send(answer)
        except Exception as exc:  # an unpicklable result
            results.send((task_id, False, RuntimeError(f"cannot return the result: {exc}")))
    results.close()


def _picklable_error(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class WorkerPool:
    """``jobs`` worker processes; tasks go to a worker chosen by the caller."""

    def __init__(self, ctx: Any, jobs: int) -> None:
        self.jobs = jobs
        self._queues: list[Any] = []
        self._conns: list[Any] = []
        self._procs: list[Any] = []
        self._alive: list[bool] = []
        self._pending: list[dict[int, Task]] = []
        self._load: list[int] = []  # the cost of each worker's unfinished tasks
        self._next_id = 0
        for _ in range(jobs):
            tasks = ctx.Queue()
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_serve, args=(tasks, writer), daemon=True)
            proc.start()
            writer.close()  # the worker holds the only writer: its exit closes the pipe
            self._queues.append(tasks)
            self._conns.append(reader)
            self._procs.append(proc)
            self._alive.append(True)
            self._pending.append({})
            self._load.append(0)

    @classmethod
    def start(cls, jobs: int) -> Optional["WorkerPool"]:
        """A pool of ``jobs`` workers, or None when processes cannot be started here."""
        import multiprocessing as mp

        if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
            # fork only from a process with no other thread (a forked lock could be held)
            if threading.active_count() != 1:
                return None
            ctx = mp.get_context("fork")
        else:
            ctx = mp.get_context("spawn")
        try:
            return cls(ctx, jobs)
        except Exception:
            return None

    # -- sending ---------------------------------------------------------------------------

    def alive(self) -> list[int]:
        return [w for w in range(self.jobs) if self._alive[w]]

    def least_loaded(self) -> Optional[int]:
        """The live worker with the least unfinished work (None: none is alive)."""
        live = self.alive()
        return min(live, key=lambda w: (self._load[w], w)) if live else None

    def load(self, worker: int) -> int:
        return self._load[worker]

    def submit(self, worker: Optional[int], fn: Callable, *args: Any, cost: int = 1) -> Task:
        """Send ``fn(*args)`` to ``worker`` (None or a dead one: the least loaded)."""
        if worker is None or not self._alive[worker]:
            worker = self.least_loaded()
        if worker is None:
            task = Task(self, -1, cost)
            task.done, task.value = True, WorkerDied("no worker process is left")
            return task
        import pickle

        # pickled here, not in the queue's feeder thread: a task that cannot be pickled
        # raises in the caller instead of vanishing (and leaving the caller waiting)
        payload = pickle.dumps((self._next_id + 1, fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        task = Task(self, worker, cost)
        self._next_id += 1
        self._pending[worker][self._next_id] = task
        self._load[worker] += cost
        self._queues[worker].put(payload)
        return task

    def broadcast(self, fn: Callable, *args: Any) -> list[Task]:
        """``fn(*args)`` once in every live worker."""
        return [self.submit(w, fn, *args, cost=0) for w in self.alive()]

    # -- receiving -------------------------------------------------------------------------

    def collect(self, block: bool) -> bool:
        """Take in the answers that have arrived (waiting for one when ``block``); True if
        anything finished."""
        from multiprocessing.connection import wait

        conns = [self._conns[w] for w in self.alive() if self._pending[w]]
        if not conns:
            return False
        ready = wait(conns, timeout=None if block else 0)
        finished = False
        for conn in ready:
            w = self._conns.index(conn)
            try:
                task_id, ok, value = conn.recv()
            except (EOFError, OSError):
                self._died(w)
                finished = True
                continue
            task = self._pending[w].pop(task_id, None)
            if task is not None:
                self._load[w] -= task.cost
                task.done, task.ok, task.value = True, ok, value
                finished = True
        return finished

    def _died(self, w: int) -> None:
        self._alive[w] = False
        for task in self._pending[w].values():
            task.done, task.ok, task.value = True, False, WorkerDied("the worker process died")
        self._pending[w].clear()
        self._load[w] = 0

    def idle(self, worker: int) -> bool:
        return self._alive[worker] and not self._pending[worker]

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the workers (after their current task) and wait for them."""
        for w in range(self.jobs):
            if self._alive[w]:
                try:
                    self._queues[w].put(None)
                except Exception:
                    pass
        for w, proc in enumerate(self._procs):
            proc.join(timeout=30)
            if proc.is_alive():  # pragma: no cover - a stuck worker
                proc.kill()
                proc.join()
            try:
                self._conns[w].close()
            except Exception:
                pass
            self._queues[w].close()
            self._queues[w].join_thread()

    def kill(self) -> None:
        """Stop the workers now (an interrupted run)."""
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
        self.close()
