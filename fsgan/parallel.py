"""Run independent jobs (e.g. the cells of a benchmark preset) in N worker processes.

Each job is a picklable callable plus arguments. With parallel=1 the jobs run in this process, in order, as before.
With parallel=N > 1 they run in N 'spawn' processes (a fresh interpreter each: no state leaks between jobs, CUDA
works), one job per process at a time, each limited to `threads` CPU threads (torch.set_num_threads plus the
OMP/MKL variables), with its printed output going to its own log file. Jobs write their results to disk
themselves (comparison folders are resumable), so a failed or killed job loses only its own unfinished work.
"""
import contextlib
import multiprocessing
import os
import traceback
from dataclasses import dataclass, field


@dataclass
class Job:
    """One unit of work: fn(*args, **kwargs); name labels it in messages; log: file for its output (parallel runs)."""
    name: str
    fn: object
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    log: str = None


class JobError(Exception):
    """One or more jobs failed; the message names them and their log files."""


def _limit_threads(threads):
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = str(threads)
    import torch
    torch.set_num_threads(threads)


def _run_logged(job, threads):
    """Worker body: run one job with its output in job.log. Returns (name, None) or (name, error line)."""
    _limit_threads(threads)
    os.makedirs(os.path.dirname(os.path.abspath(job.log)), exist_ok=True)
    with open(job.log, 'a', buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            job.fn(*job.args, **job.kwargs)
            return job.name, None
        except Exception as e:  # reported to the parent, which names the job and its log
            traceback.print_exc(file=log)
            return job.name, f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'


def run_jobs(jobs, parallel=1, threads=1, progress=print):
    """Run every job; parallel: number of worker processes; threads: CPU threads per worker.

    Returns the names of the jobs that finished. Raises JobError naming the failed jobs (after all others ran).
    progress: called with one line per finished job (print by default; None for silence).
    """
    say = progress or (lambda line: None)
    if parallel <= 1:
        for job in jobs:
            job.fn(*job.args, **job.kwargs)
            say(f'[parallel] {job.name}: done')
        return [job.name for job in jobs]
    missing = [job.name for job in jobs if not job.log]
    if missing:
        raise ValueError(f'parallel jobs need a log file: {", ".join(missing)}')
    failed, done = [], []
    logs = {job.name: job.log for job in jobs}
    context = multiprocessing.get_context('spawn')
    with context.Pool(processes=min(parallel, len(jobs)), maxtasksperchild=1) as pool:
        pending = [pool.apply_async(_run_logged, (job, threads)) for job in jobs]
        for result in pending:
            name, error = result.get()
            (failed if error else done).append((name, error))
            say(f'[parallel] {name}: ' + (f'FAILED ({error}); log {logs[name]}' if error else 'done'))
    if failed:
        raise JobError(f'{len(failed)} of {len(jobs)} jobs failed: ' +
                       '; '.join(f'{name} ({error}, log {logs[name]})' for name, error in failed))
    return [name for name, _ in done]

