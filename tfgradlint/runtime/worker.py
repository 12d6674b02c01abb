"""The worker process that runs TensorFlow, and the client the linter uses to drive it.

One worker per run: importing TensorFlow costs seconds, so the worker imports it once and then
runs jobs (one per finding or function) sent as JSON lines on its standard input; it answers on
a private copy of its original standard output, while the user's ``print``s and TensorFlow's
logs go to a log file. The worker runs on the CPU only (``CUDA_VISIBLE_DEVICES=-1``), with
TensorFlow's and absl's logs silenced and an address-space limit (``RLIMIT_AS``). A job that
hangs, crashes the process or runs out of memory costs only that job: the client kills the
worker's process group, reports the job as failed, and starts a fresh worker for the next job.

    python -m tfgradlint.runtime.worker [--memory-limit-mb N]
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

# TensorFlow 2.21 on the CPU reserves about 1.0 GB of address space after import and about
# 1.2 GB once it has run gradients, Keras layers and tf.function (measured: docs/runtime.md). The
# default leaves room for real user code while still stopping a runaway allocation.
DEFAULT_MEMORY_LIMIT_MB = 4096
DEFAULT_TIMEOUT = 60.0
STARTUP_TIMEOUT = 180.0


class JobFailed(Exception):
    """A job did not produce an answer: timeout, crash or out of memory (``reason`` says)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # "timeout" | "crash" | "oom" | "startup"
        self.reason = reason


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent.parent)


class WorkerClient:
    """Starts the worker on first use, sends jobs, restarts it after a failure."""

    def __init__(
        self,
        python: Optional[str] = None,
        memory_limit_mb: Optional[int] = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.python = python or sys.executable
        self.memory_limit_mb = DEFAULT_MEMORY_LIMIT_MB if memory_limit_mb is None else memory_limit_mb
        self.startup_timeout = startup_timeout
        self.proc: Optional[subprocess.Popen] = None
        self._log = None
        self._buffer = b""
        self.starts = 0
        self.import_seconds: list[float] = []
        self.tensorflow_version: Optional[str] = None

    # -- process management ---------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = "-1"
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        env["TF_CPP_MIN_VLOG_LEVEL"] = "0"
        env["GRPC_VERBOSITY"] = "ERROR"
        env["KERAS_BACKEND"] = "tensorflow"
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # glibc reserves 64 MB of address space per thread arena; TensorFlow's thread pools
        # would otherwise make the address-space limit depend on the number of cores.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        root = _package_root()
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def start(self) -> None:
        self.close()
        self._log = tempfile.TemporaryFile(prefix="tfgradlint-worker-")
        cmd = [self.python, "-m", "tfgradlint.runtime.worker", "--memory-limit-mb", str(self.memory_limit_mb)]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self._env(),
            start_new_session=True,
        )
        self._buffer = b""
        self.starts += 1
        try:
            hello = self._read(self.startup_timeout)
        except JobFailed as exc:
            raise JobFailed("startup", f"the TensorFlow worker did not start: {exc.reason}") from None
        if not hello.get("ready"):
            error = str(hello.get("error", hello))
            hint = ""
            if any(m in error for m in ("failed to map segment", "Cannot allocate memory", "MemoryError", "bad_alloc")):
                hint = (
                    f" (runtime.memory-limit-mb = {self.memory_limit_mb} is too low: TensorFlow needs about "
                    "1.2 GB of address space)"
                )
            raise JobFailed("startup", f"the TensorFlow worker did not start: {error}{hint}")
        self.import_seconds.append(float(hello.get("import_seconds", 0.0)))
        self.tensorflow_version = hello.get("tensorflow")

    def close(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            if proc.poll() is None:
                try:
                    proc.stdin.close()  # type: ignore[union-attr]
                    proc.wait(timeout=2)
                except (OSError, subprocess.TimeoutExpired):
                    self._kill(proc)
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()  # type: ignore[union-attr]
                except OSError:
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and anything it started
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass

    def __enter__(self) -> "WorkerClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- protocol -----------------------------------------------------------------------

    def _log_tail(self, limit: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - limit))
            return self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _read(self, timeout: float) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill(self.proc)
                raise JobFailed("timeout", f"timed out after {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise self._crashed()
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line.decode("utf-8"))

    def _crashed(self) -> JobFailed:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self._kill(self.proc)
            rc = self.proc.returncode
        tail = self._log_tail()
        oom_marks = ("MemoryError", "bad_alloc", "Cannot allocate memory", "OOM", "out of memory", "ResourceExhausted")
        if any(m in tail for m in oom_marks):
            return JobFailed("oom", f"ran out of memory (limit {self.memory_limit_mb} MB; runtime.memory-limit-mb)")
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            return JobFailed("crash", f"the TensorFlow worker crashed ({name})")
        last = [ln for ln in tail.strip().splitlines() if ln.strip()]
        detail = f": {last[-1][:200]}" if last else ""
        return JobFailed("crash", f"the TensorFlow worker exited with code {rc}{detail}")

    def run(self, job: dict, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Run one job; raises JobFailed (and restarts the worker next time) when it fails."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            failure = self._crashed()
            self.close()
            raise failure from None
        try:
            answer = self._read(timeout)
        except JobFailed:
            self.close()
            raise
        if answer.get("restart"):
            # The job left the worker in a bad state (e.g. MemoryError): start afresh next time.
            self.close()
            if answer.get("oom"):
                raise JobFailed("oom", f"ran out of memory (limit {self.memory_limit_mb} MB; runtime.memory-limit-mb)")
        return answer


# -- the worker process -------------------------------------------------------------------------


def _set_memory_limit(mb: int) -> None:
    if mb <= 0:
        return
    try:
        import resource

        limit = mb * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not Linux
        pass


def _silence_tensorflow() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    try:
        tf.autograph.set_verbosity(0)
    except Exception:  # noqa: BLE001  # pragma: no cover
        pass


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    limit = DEFAULT_MEMORY_LIMIT_MB
    if "--memory-limit-mb" in argv:
        limit = int(argv[argv.index("--memory-limit-mb") + 1])
    # Answers go to a private copy of stdout; the user's prints go to the log (stderr).
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _set_memory_limit(limit)

    def send(obj: dict) -> None:
        proto.write(json.dumps(obj, default=str) + "\n")
        proto.flush()

    started = time.monotonic()
    try:
        import tensorflow as tf

        _silence_tensorflow()
        try:
            threads = max(1, min(4, os.cpu_count() or 1))
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # pragma: no cover
            pass
    except BaseException as exc:  # noqa: BLE001
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    send({"ready": True, "tensorflow": tf.__version__, "import_seconds": round(time.monotonic() - started, 3)})

    from tfgradlint.runtime import scenarios

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            job = json.loads(line)
        except ValueError as exc:
            send({"internal_error": f"bad request: {exc}"})
            continue
        try:
            answer = scenarios.run_job(job)
        except MemoryError:
            send({"oom": True, "restart": True})
            return 3
        except BaseException as exc:  # noqa: BLE001 - report, keep serving
            import traceback

            send({"internal_error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})
            continue
        send(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
