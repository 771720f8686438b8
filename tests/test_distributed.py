"""Loss averaging across processes: a NaN on one rank must reach every rank; rank 0's decisions reach all."""
import math
import os

import torch
import torch.multiprocessing as mp

from torch_utils import distributed


def _worker(rank, init_file, result_dir):
    distributed.init(rank, 2, init_file, 'cpu')
    values = {'G': float('nan') if rank == 1 else 1.0, 'D': 2.0 + rank}
    out = distributed.average_gradients([], values)
    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = torch.full([3], float(rank))
    both = distributed.average_gradients([param], {'D': 2.0 + rank})   # gradients and losses in one all_reduce
    decided = [distributed.rank0_decides(rank == 0), distributed.rank0_decides(rank == 1)]  # rank 0's, everywhere
    with open(os.path.join(result_dir, f'{rank}.txt'), 'w') as f:
        f.write(f"{out['G']} {out['D']} {both['D']} {param.grad.tolist()} {torch.get_num_threads()} "
                f"{decided}".replace(', ', ','))
    distributed.shutdown()


def test_average_gradients_scalars_spreads_nan_and_means(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=2, join=True)
    threads = distributed.cpu_threads(2, distributed.usable_cores(), os.environ)
    for rank in (0, 1):
        g, d, d_both, grad, num_threads, decided = (tmp_path / f'{rank}.txt').read_text().split()
        assert int(num_threads) == threads  # each process took its share of the cores
        g, d = float(g), float(d)
        assert math.isnan(g)      # rank 1's NaN reached rank 0 too: both stop or roll back together
        assert d == 2.5
        assert float(d_both) == 2.5 and grad == '[0.5,0.5,0.5]'
        assert decided == '[True,False]'  # one decision for all ranks (a checkpoint every rank must take part in)



def test_cpu_threads_share_the_cores_unless_omp_num_threads_is_set():
    assert distributed.cpu_threads(2, 2, {}) == 1
    assert distributed.cpu_threads(2, 16, {}) == 8
    assert distributed.cpu_threads(4, 2, {}) == 1        # never 0
    assert distributed.cpu_threads(2, 16, {'OMP_NUM_THREADS': '3'}) == 3
    assert distributed.cpu_threads(2, 16, {'OMP_NUM_THREADS': ''}) == 8
    assert distributed.cpu_threads(2, 16, {'OMP_NUM_THREADS': 'four'}) == 8   # not a number: shared, no traceback


def test_average_gradients_scalars_single_process_is_identity():
    values = {'G': 1.5}
    assert distributed.average_gradients([], values) == values
