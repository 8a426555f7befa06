"""The local backend: N trial processes sharing the study's journal, each on its share of the cores.

The driver (this process) starts the workers, shows the trials as the journal records them, and
waits.  Each worker runs on ``cores / N`` cores: its CPU affinity is set before it starts, so the
numpy backend's batch split sees only those cores, and BLAS and OpenMP get the same thread count.
Workers die with the driver (Linux's parent-death signal), so a killed sweep leaves nothing running.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from specforge.base.errors import Problem, RunError, SweepInterrupted
from specforge.runs import directory as runs
from specforge.sweep import directory
from specforge.sweep.journal import drop_torn_record, require_record_of_trials
from specforge.sweep.results import TrialRecord
from specforge.sweep.space import SweepConfig, sweep_payload
from specforge.sweep.study import mark_interrupted, open_study, queue_grid, records

#: Seconds between two looks at the journal while the workers run.
POLL_INTERVAL = 0.5
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def core_shares(jobs: int) -> list[list[int]]:
    """The cores this process may use, divided among ``jobs`` workers (one core each when there are fewer)."""
    cores = sorted(os.sched_getaffinity(0))
    if jobs >= len(cores):
        return [[cores[index % len(cores)]] for index in range(jobs)]
    share = len(cores) // jobs
    return [cores[index * share : (index + 1) * share] for index in range(jobs)]


def run_local(
    sweep: SweepConfig,
    sweep_dir: Path,
    *,
    jobs: int,
    limits: dict[str, int | None],
    on_update: Callable[[list[TrialRecord]], None],
    on_warning: Callable[[Problem], None],
) -> list[TrialRecord]:
    """Run the sweep's remaining trials in ``jobs`` processes; ``on_update`` gets the trials as they change,
    ``on_warning`` a journal's torn last record, dropped before anything reads it."""
    with directory.locked(
        sweep_dir / directory.DRIVER_LOCK, busy="the sweep is running in another process; wait for it to end or stop it"
    ):
        torn = drop_torn_record(sweep_dir / directory.JOURNAL)
        if torn is not None:
            on_warning(torn)
        require_record_of_trials(sweep_dir)
        study = open_study(sweep, sweep_dir)
        queue_grid(study, sweep)
        mark_interrupted(study, sweep)
        deadline = time.time() + sweep.timeout if sweep.timeout else None
        workers = [
            _start_worker(sweep, sweep_dir, index, cores, deadline, limits)
            for index, cores in enumerate(core_shares(jobs))
        ]
        try:
            while any(worker.poll() is None for worker in workers):
                on_update(records(study))
                time.sleep(POLL_INTERVAL)
        except KeyboardInterrupt:
            _stop(workers)
            raise SweepInterrupted("interrupted; finished trials are kept: run the same command to continue") from None
        found = records(study)
        on_update(found)
        failed = [(index, worker) for index, worker in enumerate(workers) if worker.returncode != 0]
        if failed:
            index, worker = failed[0]
            raise RunError(
                f"a trial process exited with status {worker.returncode}: {_last_line(_log_path(sweep_dir, index))}",
                file=runs.display_path(sweep_dir),
            )
        return found


def _start_worker(
    sweep: SweepConfig,
    sweep_dir: Path,
    index: int,
    cores: list[int],
    deadline: float | None,
    limits: dict[str, int | None],
) -> subprocess.Popen:
    env = {**os.environ, **{name: str(len(cores)) for name in _THREAD_VARIABLES}}
    log = _log_path(sweep_dir, index).open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "specforge.sweep.worker"],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
        env=env,
        preexec_fn=lambda: _confine(cores),
        text=True,
    )
    log.close()
    orders = {
        "sweep": sweep_payload(sweep),
        "sweep_dir": str(sweep_dir),
        "worker": index,
        "deadline": deadline,
        "limits": limits,
    }
    stdin = process.stdin
    assert stdin is not None  # stdin=PIPE
    stdin.write(json.dumps(orders))
    stdin.close()
    return process


def _confine(cores: list[int]) -> None:
    """In the new worker, before it runs anything: its cores, and death when the driver dies."""
    os.sched_setaffinity(0, cores)
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGINT)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _log_path(sweep_dir: Path, index: int) -> Path:
    """Where worker ``index`` writes its output."""
    return sweep_dir / f"worker-{index}.log"


def _last_line(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"
