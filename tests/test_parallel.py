"""fsgan.parallel: jobs in worker processes, one log each, thread limits, failures named."""
import os
import signal

import pytest

from fsgan.parallel import Job, JobError, run_jobs


def write_pid_and_threads(path, text):
    """Job body: print a line (to the log), write text, pid and torch's thread count to path."""
    import torch
    print(f'working on {os.path.basename(path)}')
    with open(path, 'w') as f:
        f.write(f'{text} {os.getpid()} {torch.get_num_threads()} {os.environ.get("OMP_NUM_THREADS")}')


def fail(message):
    raise ValueError(message)


def die_by_sigkill():
    """Job body: end this process as the out-of-memory killer would, without a word to the parent."""
    os.kill(os.getpid(), signal.SIGKILL)


def test_jobs_run_in_separate_processes_with_their_own_logs(tmp_path):
    jobs = [Job(f'cell{i}', write_pid_and_threads, (str(tmp_path / f'out{i}.txt'), f'job{i}'),
                log=str(tmp_path / 'logs' / f'cell{i}.log')) for i in range(3)]
    lines = []
    assert run_jobs(jobs, parallel=2, threads=1, progress=lines.append) == ['cell0', 'cell1', 'cell2']
    results = [(tmp_path / f'out{i}.txt').read_text().split() for i in range(3)]
    assert [r[0] for r in results] == ['job0', 'job1', 'job2']
    assert all(r[2] == '1' and r[3] == '1' for r in results)          # one thread each
    assert all(int(r[1]) != os.getpid() for r in results)              # not in this process
    assert len({r[1] for r in results}) == 3                          # a fresh process per job
    assert (tmp_path / 'logs' / 'cell1.log').read_text().strip() == 'working on out1.txt'
    assert sorted(lines) == ['[parallel] cell0: done', '[parallel] cell1: done', '[parallel] cell2: done']


def test_a_failed_job_is_named_and_the_others_still_finish(tmp_path):
    jobs = [Job('bad', fail, ('no data here',), log=str(tmp_path / 'bad.log')),
            Job('good', write_pid_and_threads, (str(tmp_path / 'good.txt'), 'ok'), log=str(tmp_path / 'good.log'))]
    with pytest.raises(JobError, match=r"1 of 2 jobs failed: bad \(ValueError: no data here, log .*bad.log\)"):
        run_jobs(jobs, parallel=2, progress=None)
    assert (tmp_path / 'good.txt').read_text().startswith('ok')
    assert 'Traceback' in (tmp_path / 'bad.log').read_text()


def test_a_killed_worker_is_reported_and_the_other_jobs_still_run(tmp_path):
    jobs = [Job('killed', die_by_sigkill, log=str(tmp_path / 'killed.log')),
            Job('good', write_pid_and_threads, (str(tmp_path / 'good.txt'), 'ok'), log=str(tmp_path / 'good.log')),
            Job('queued', write_pid_and_threads, (str(tmp_path / 'queued.txt'), 'ok'), log=str(tmp_path / 'q.log'))]
    lines = []
    with pytest.raises(JobError, match=r"1 of 3 jobs failed: killed \(killed by SIGKILL, log .*killed.log\)"):
        run_jobs(jobs, parallel=2, progress=lines.append)
    assert (tmp_path / 'good.txt').read_text().startswith('ok')
    assert (tmp_path / 'queued.txt').read_text().startswith('ok')
    assert sorted(line for line in lines if 'killed' not in line) == ['[parallel] good: done', '[parallel] queued: done']


def test_one_worker_runs_in_this_process_in_order(tmp_path):
    jobs = [Job(f'j{i}', write_pid_and_threads, (str(tmp_path / f'{i}.txt'), str(i))) for i in range(2)]
    assert run_jobs(jobs, parallel=1, progress=None) == ['j0', 'j1']
    assert all(int((tmp_path / f'{i}.txt').read_text().split()[1]) == os.getpid() for i in range(2))


def test_parallel_jobs_need_log_files():
    with pytest.raises(ValueError, match='need a log file: x'):
        run_jobs([Job('x', print), Job('y', print, log='y.log')], parallel=2)
