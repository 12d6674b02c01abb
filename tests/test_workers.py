"""tfgradlint/workers.py: addressed workers, forked warm from a zygote."""

from __future__ import annotations

import os
import time

import pytest

from tfgradlint.workers import WorkerDied, WorkerPool


def _append_pid(path):  # a warm-up: records the process it ran in
    with open(path, "a") as fh:
        fh.write(f"{os.getpid()}\n")


def _slow_warm_up(path):
    time.sleep(3)
    _append_pid(path)


def _warm_marker():
    return os.environ["TGL_WARM_MARKER"]


def _warm_up_from_env():
    _append_pid(_warm_marker())


def _slow_warm_up_from_env():
    _slow_warm_up(_warm_marker())


def _getpid():
    return os.getpid()


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "warm"
    monkeypatch.setenv("TGL_WARM_MARKER", str(path))
    return path


def test_the_warm_up_runs_once_and_every_worker_inherits_it(marker):
    pool = WorkerPool.start(3, _warm_up_from_env)
    assert pool is not None
    try:
        pids = [pool.submit(w, _getpid).result() for w in range(3)]
    finally:
        pool.close()
    warmed = marker.read_text().split()
    assert len(warmed) == 1  # once, in the zygote
    assert len(set(pids)) == 3 and str(os.getpid()) not in warmed
    assert warmed[0] not in map(str, pids)


def test_tasks_sent_before_the_workers_exist_are_answered(marker):
    pool = WorkerPool.start(2, _warm_up_from_env)
    assert pool is not None
    try:
        tasks = [pool.submit(None, len, "x" * n, cost=n) for n in range(1, 40)]
        assert [t.result() for t in tasks] == list(range(1, 40))
    finally:
        pool.close()


def test_a_dead_worker_fails_its_tasks_and_the_others_go_on():
    pool = WorkerPool.start(2)
    assert pool is not None
    try:
        doomed = pool.submit(0, os._exit, 3)
        with pytest.raises(WorkerDied):
            doomed.result()
        assert pool.alive() == [1]
        assert pool.submit(0, len, "abc").result() == 3  # sent to the live worker instead
    finally:
        pool.close()


def test_closing_a_pool_that_was_never_used_does_not_wait_for_its_warm_up(marker):
    pool = WorkerPool.start(2, _slow_warm_up_from_env)
    assert pool is not None
    zygote = pool._procs[0]
    pool.close()
    assert not zygote.is_alive()
    time.sleep(3.5)  # the warm-up would have written by now
    assert not marker.exists()


def _stamp_after(seconds):
    time.sleep(seconds)
    return time.monotonic()


def test_urgent_tasks_run_before_the_waiting_ones():
    """A worker reads every task waiting in its pipe before it starts the next: the urgent
    one sent last runs before the ordinary ones sent before it (but after the running one)."""
    pool = WorkerPool.start(1)
    assert pool is not None
    try:
        pool.submit(0, _stamp_after, 0.0).result()  # the worker is up
        running = pool.submit(0, _stamp_after, 0.4)
        time.sleep(0.1)  # and has started it
        waiting = [pool.submit(0, _stamp_after, 0.01) for _ in range(3)]
        urgent = pool.submit(0, _stamp_after, 0.0, urgent=True)
        stamps = [t.result() for t in waiting]
        assert running.result() < urgent.result() < min(stamps)
        assert stamps == sorted(stamps)  # the others in the order sent
    finally:
        pool.close()


def _pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def test_the_backlog_goes_to_whichever_worker_is_free():
    """Tasks given to no worker in particular wait in the runner until a worker has fewer
    than IN_FLIGHT unfinished ones: a worker held up by a long task gets fewer."""
    pool = WorkerPool.start(2)
    assert pool is not None
    try:
        first = pool.submit_later(_pid_after, 0.8)
        rest = [pool.submit_later(_pid_after, 0.05) for _ in range(7)]
        assert pool.waiting() > 0 or all(t.worker >= 0 for t in rest)
        slow = first.result()
        pids = [t.result() for t in rest]
        assert pids.count(slow) <= 2 < pids.count(next(p for p in pids if p != slow))
        assert pool.waiting() == 0
    finally:
        pool.close()


def test_a_backlog_task_waits_for_the_worker_it_would_rather_run_on():
    pool = WorkerPool.start(2)
    assert pool is not None
    try:
        pool.submit(0, _pid_after, 0.0).result()
        pool.submit(1, _pid_after, 0.0).result()
        anchor = pool.submit(0, _pid_after, 0.3)
        pool.submit(0, _pid_after, 0.0)
        pool.submit(1, _pid_after, 0.05)
        pool.submit(1, _pid_after, 0.8)
        near = pool.submit_later(_pid_after, 0.0, near=anchor)
        free = pool.submit_later(_pid_after, 0.0)
        # worker 1 is free first: it takes the newer task, the older one waits for worker 0
        assert free.result() != anchor.result()
        assert near.result() == anchor.result()
    finally:
        pool.close()


def test_the_backlog_fails_when_no_worker_is_left_or_the_pool_closes():
    pool = WorkerPool.start(1)
    assert pool is not None
    doomed = pool.submit(0, os._exit, 3)
    waiting = [pool.submit_later(_pid_after, 0.0) for _ in range(4)]
    with pytest.raises(WorkerDied):
        doomed.result()
    for task in waiting:
        with pytest.raises(WorkerDied):
            task.result()
    pool.close()

    pool = WorkerPool.start(1)
    assert pool is not None
    for _ in range(2):
        pool.submit(0, _pid_after, 0.2)
    late = pool.submit_later(_pid_after, 0.0)
    assert late.worker == -1
    pool.close()
    with pytest.raises(WorkerDied):
        late.result()
