"""Worker processes for a run over many files, each addressed on its own.

A ``concurrent.futures`` pool hands a task to whichever worker is free; the runner wants
more control than that: a file's lint goes to the worker that holds what was computed for
it before (its statement layout, tfgradlint/slicing.py ``analysed``; its parsed plan,
engine.lint_ahead), so that no step is done twice. Work whose cost is hard to guess waits
in a backlog here until a worker is free (``submit_later``), preferably the one holding
what it needs; urgent tasks run before a worker's others (``submit(..., urgent=True)``).

Each worker has its own task pipe, fed by a sender thread here (sending never blocks the
runner), and its own result pipe: a worker's exit, even a crash, closes it, and its
unfinished tasks fail with :class:`WorkerDied`. A task is pickled where it is submitted,
so one that cannot be pickled raises there.

Where fork is safe (Linux, no other thread yet) the workers are forked from a *zygote*:
one process forked first, which runs the warm-up (importing LibCST and the rules, about
0.13 s) once and then forks every worker, each starting warm. The runner forks it early,
while it is still small, so the warm-up runs beside its own discovery and reading instead
of once per worker. Elsewhere the workers are spawned and each runs the warm-up itself.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import signal
import sys
import threading
from typing import Any, Callable, Optional


# Unfinished tasks a worker may have before the backlog gives it more: one running, one
# waiting in its pipe, so that it does not wait for the runner between two.
IN_FLIGHT = 2
# How far into the backlog a free worker looks for a task that would rather run there.
NEAR_WINDOW = 4


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
    """A worker's loop, in one thread with a deep stack for all its tasks (a thread per task
    made LibCST's parses about 15% slower: each new thread starts with cold memory)."""
    from tfgradlint.engine import call_with_deep_stack

    call_with_deep_stack(_serve_here, tasks, results)


def _serve_here(tasks: Any, results: Any) -> None:
    """Run each task, answer (ok, value); the end of its pipe ends the loop. Urgent tasks
    go first: the worker reads every task waiting in its pipe before it starts the next
    one, and starts the oldest urgent one, else the oldest."""
    urgent: "collections.deque[tuple]" = collections.deque()
    normal: "collections.deque[tuple]" = collections.deque()
    open_ = True
    while open_ or urgent or normal:
        try:
            # block for a task only when none is waiting here
            while open_ and (not (urgent or normal) or tasks.poll(0)):
                task_id, first, fn, args = pickle.loads(tasks.recv_bytes())
                (urgent if first else normal).append((task_id, fn, args))
        except (EOFError, OSError):
            open_ = False
        if not (urgent or normal):
            break
        task_id, fn, args = (urgent or normal).popleft()
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
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _zygote(
    warm_up: Optional[Callable[[], None]], task_ends: list, result_ends: list, pids_end: Any, runner_ends: list
) -> None:
    """Warm up once, fork one worker per pipe pair, report their pids, wait for them."""
    for end in runner_ends:  # forked copies of the runner's ends: a pipe whose other end
        end.close()  # stays open here would never show a worker's (or the runner's) exit
    if warm_up is not None:
        try:
            warm_up()
        except Exception:  # only an optimisation
            pass
    pids = []
    for i in range(len(task_ends)):
        pid = os.fork()
        if pid == 0:  # the worker: keep its own ends only (so that a death shows as EOF)
            for j in range(len(task_ends)):
                if j != i:
                    task_ends[j].close()
                    result_ends[j].close()
            pids_end.close()
            try:
                _serve(task_ends[i], result_ends[i])
            finally:
                os._exit(0)
        pids.append(pid)
    for end in (*task_ends, *result_ends):
        end.close()
    try:
        pids_end.send(pids)
    finally:
        pids_end.close()
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


class WorkerPool:
    """``jobs`` worker processes; tasks go to a worker chosen by the caller."""

    def __init__(self, ctx: Any, jobs: int, warm_up: Optional[Callable[[], None]], zygote: bool) -> None:
        self.jobs = jobs
        self._senders: list[queue.SimpleQueue] = []
        self._threads: list[threading.Thread] = []
        self._conns: list[Any] = []
        self._procs: list[Any] = []  # the zygote, or the workers
        self._pids: Optional[list[int]] = None  # the zygote's workers, once reported
        self._pids_conn: Any = None
        self._alive = [True] * jobs
        self._pending: list[dict[int, Task]] = [{} for _ in range(jobs)]
        self._load = [0] * jobs  # the cost of each worker's unfinished tasks
        self._next_id = 0
        # (task id, task, payload, task to run near) for whichever worker is free first
        # (submit_later)
        self._backlog: "collections.deque[tuple[int, Task, bytes, Optional[Task]]]" = collections.deque()
        task_pairs = [ctx.Pipe(duplex=False) for _ in range(jobs)]  # (worker reads, we write)
        result_pairs = [ctx.Pipe(duplex=False) for _ in range(jobs)]  # (we read, worker writes)
        if zygote:
            pids_read, pids_write = ctx.Pipe(duplex=False)
            runner_ends = [w for _, w in task_pairs] + [r for r, _ in result_pairs] + [pids_read]
            proc = ctx.Process(
                target=_zygote,
                args=(warm_up, [r for r, _ in task_pairs], [w for _, w in result_pairs], pids_write, runner_ends),
                daemon=True,
            )
            proc.start()
            pids_write.close()
            self._pids_conn = pids_read
            self._procs.append(proc)
            for r, _ in task_pairs:
                r.close()
            for _, w in result_pairs:
                w.close()
        else:
            for (r, _), (_, w) in zip(task_pairs, result_pairs):
                proc = ctx.Process(target=_serve, args=(r, w), daemon=True)
                proc.start()
                r.close()
                w.close()  # the worker holds the only writer: its exit closes the pipe
                self._procs.append(proc)
        self._conns = [r for r, _ in result_pairs]
        for _, w in task_pairs:
            q: queue.SimpleQueue = queue.SimpleQueue()
            t = threading.Thread(target=_send_all, args=(q, w), daemon=True, name="tfgradlint-send")
            t.start()
            self._senders.append(q)
            self._threads.append(t)
        if not zygote and warm_up is not None:
            self.broadcast(warm_up)

    @classmethod
    def start(cls, jobs: int, warm_up: Optional[Callable[[], None]] = None) -> Optional["WorkerPool"]:
        """A pool of ``jobs`` workers that have run ``warm_up`` (picklable by reference),
        or None when processes cannot be started here."""
        import multiprocessing as mp

        if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
            # fork only from a process with no other thread (a forked lock could be held)
            if threading.active_count() != 1:
                return None
            ctx, zygote = mp.get_context("fork"), True
        else:
            ctx, zygote = mp.get_context("spawn"), False
        try:
            return cls(ctx, jobs, warm_up, zygote)
        except Exception:
            return None

    # -- sending ---------------------------------------------------------------------------

    def alive(self) -> list[int]:
        return [w for w in range(self.jobs) if self._alive[w]]

    def is_alive(self, worker: int) -> bool:
        return 0 <= worker < self.jobs and self._alive[worker]

    def least_loaded(self) -> Optional[int]:
        """The live worker with the least unfinished work (None: none is alive)."""
        live = self.alive()
        return min(live, key=lambda w: (self._load[w], w)) if live else None

    def submit(self, worker: Optional[int], fn: Callable, *args: Any, cost: int = 1, urgent: bool = False) -> Task:
        """Send ``fn(*args)`` to ``worker`` (None or a dead one: the least loaded). An
        ``urgent`` task runs before the worker's others that have not started."""
        if worker is None or not self._alive[worker]:
            worker = self.least_loaded()
        if worker is None:
            task = Task(self, -1, cost)
            task.done, task.value = True, WorkerDied("no worker process is left")
            return task
        task = Task(self, worker, cost)
        self._next_id += 1
        payload = pickle.dumps((self._next_id, urgent, fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        self._send(worker, self._next_id, task, payload)
        return task

    def _send(self, worker: int, task_id: int, task: Task, payload: bytes) -> None:
        task.worker = worker
        self._pending[worker][task_id] = task
        self._load[worker] += task.cost
        self._senders[worker].put(payload)

    def submit_later(self, fn: Callable, *args: Any, cost: int = 1, near: Optional[Task] = None) -> Task:
        """``fn(*args)`` for the first worker with fewer than ``IN_FLIGHT`` unfinished tasks,
        now or once one has (each ``collect`` and ``poll`` hands this backlog out, about
        oldest first): work whose cost is hard to guess from its size ends about together on
        every worker. ``near``: preferably where that task runs (what it leaves in its
        worker is reused). ``Task.worker`` is -1 until the task is handed out."""
        task = Task(self, -1, cost)
        self._next_id += 1
        payload = pickle.dumps((self._next_id, False, fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        self._backlog.append((self._next_id, task, payload, near))
        self.poll()
        return task

    def poll(self) -> None:
        """Hand the backlog out as far as the workers have finished tasks, without waiting
        (for a runner busy with other things)."""
        self._hand_out()
        if self._backlog:
            self.collect(block=False)

    def waiting(self) -> int:
        """Tasks in the backlog."""
        return len(self._backlog)

    def _hand_out(self) -> None:
        while self._backlog:
            live = self.alive()
            if not live:
                self._fail_backlog(WorkerDied("no worker process is left"))
                return
            w = min(live, key=lambda w: (len(self._pending[w]), self._load[w], w))
            if len(self._pending[w]) >= IN_FLIGHT:
                return
            # the oldest task that has no other worker it would rather run on, among the next
            # few; else the oldest
            pick = 0
            for i in range(min(NEAR_WINDOW, len(self._backlog))):
                near = self._backlog[i][3]
                if near is None or near.worker in (w, -1) or not self._alive[near.worker]:
                    pick = i
                    break
            task_id, task, payload, _ = self._backlog[pick]
            del self._backlog[pick]
            self._send(w, task_id, task, payload)

    def _fail_backlog(self, error: BaseException) -> None:
        for _, task, _, _ in self._backlog:
            task.done, task.ok, task.value = True, False, error
        self._backlog.clear()

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
            self._hand_out()  # (only fails the backlog: no worker is left)
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
        self._hand_out()
        return finished

    def _died(self, w: int) -> None:
        self._alive[w] = False
        for task in self._pending[w].values():
            task.done, task.ok, task.value = True, False, WorkerDied("the worker process died")
        self._pending[w].clear()
        self._load[w] = 0

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the workers: each ends after its tasks, when its pipe closes. A zygote still
        warming up, with nothing asked of it, is killed at once: a small run must not wait
        for a warm-up it never needed."""
        busy = any(self._pending[w] for w in self.alive())
        self._fail_backlog(WorkerDied("the workers were stopped"))
        for q in self._senders:
            q.put(None)  # the sender closes the pipe: the worker's loop ends
        for t in self._threads:
            t.join()
        if not busy and self._pids_conn is not None and not self._worker_pids():
            self._kill_all()  # no worker forked yet
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():  # pragma: no cover - a stuck worker
                self._kill_all()
                proc.join()
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass
        if self._pids_conn is not None:
            self._pids_conn.close()

    def _kill_all(self) -> None:
        pids = self._worker_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()

    def _worker_pids(self) -> list[int]:
        """The zygote's workers ([] until it has forked them)."""
        if self._pids is None and self._pids_conn is not None:
            try:
                if self._pids_conn.poll(0):
                    self._pids = list(self._pids_conn.recv())
            except (EOFError, OSError):
                self._pids = []
        return list(self._pids or [])


def _send_all(q: "queue.SimpleQueue", conn: Any) -> None:
    """A sender thread: write each payload to the worker's pipe; None closes it."""
    while True:
        payload = q.get()
        if payload is None:
            break
        try:
            conn.send_bytes(payload)
        except OSError:  # the worker is gone: its tasks fail through its result pipe
            break
    try:
        conn.close()
    except OSError:
        pass
