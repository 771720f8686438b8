"""Run independent jobs (e.g. the cells of a benchmark preset) in N worker processes.

Each job is a picklable callable plus arguments. With parallel=1 the jobs run in this process, in order, as before.
With parallel=N > 1 each job runs in its own 'spawn' process (a fresh interpreter: no state leaks between jobs, CUDA
works), at most N at a time, each limited to `threads` CPU threads (torch.set_num_threads plus the OMP/MKL
variables), with its printed output going to its own log file. Jobs write their results to disk themselves
(comparison folders are resumable), so a failed or killed job (e.g. by the out-of-memory killer: its process
ends without a word, and is reported by its exit code) loses only its own unfinished work.
"""
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
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


def _run_logged(job, threads, reply):
    """Worker process body: run one job with its output in job.log; send None or its error line through `reply`."""
    _limit_threads(threads)
    os.makedirs(os.path.dirname(os.path.abspath(job.log)), exist_ok=True)
    with open(job.log, 'a', buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            job.fn(*job.args, **job.kwargs)
            error = None
        except Exception as e:  # reported to the parent, which names the job and its log
            traceback.print_exc(file=log)
            error = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
    reply.send(error)
    reply.close()


def _exit_error(exitcode):
    """The error line of a worker that ended without replying (killed by a signal, or exited early)."""
    if exitcode is not None and exitcode < 0:
        try:
            return f'killed by {signal.Signals(-exitcode).name}'
        except ValueError:
            return f'killed by signal {-exitcode}'
    return f'its process exited with code {exitcode} without a result'


def _finished(process, reply):
    """None (the job finished) or its error line, once `process` has ended."""
    process.join()
    if reply.poll():
        try:
            return reply.recv()
        except EOFError:
            pass
    return _exit_error(process.exitcode)


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
    errors, logs = {}, {job.name: job.log for job in jobs}
    context = multiprocessing.get_context('spawn')
    queue, running = list(jobs), {}  # running: process sentinel -> (job, process, reply end)
    try:
        while queue or running:
            while queue and len(running) < parallel:
                job = queue.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_run_logged, args=(job, threads, send), name=job.name)
                process.start()
                send.close()  # the child holds the only sending end: its death shows as EOF here
                running[process.sentinel] = (job, process, receive)
            for sentinel in multiprocessing.connection.wait(list(running)):
                job, process, receive = running.pop(sentinel)
                errors[job.name] = _finished(process, receive)
                error = errors[job.name]
                say(f'[parallel] {job.name}: ' + (f'FAILED ({error}); log {logs[job.name]}' if error else 'done'))
    finally:
        for job, process, _ in running.values():  # interrupted: stop the workers still running
            process.terminate()
            process.join()
    failed = [(name, error) for name, error in errors.items() if error]
    if failed:
        raise JobError(f'{len(failed)} of {len(jobs)} jobs failed: ' +
                       '; '.join(f'{name} ({error}, log {logs[name]})' for name, error in failed))
    return [job.name for job in jobs if job.name in errors]

