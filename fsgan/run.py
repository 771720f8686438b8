"""Running a configured training: the run folder, data, launch in one or several processes, resume, dry run."""
import contextlib
import json
import os

from fsgan import protocol as protocols
from fsgan.methods import METHODS
from fsgan.options import BY_NAME, check_value
from fsgan.run_setup import SetupError, network_geometry, scratch_kwargs, next_run_dir, target_labels

def _user_errors():
    """The exception types a run raises for a user's mistake or a stopped run (one line for the user)."""
    from dnnlib.lock import FolderLocked
    from fsgan.loading import NetworkLoadError
    from fsgan.training_loop import TrainingError
    from training.dataset import DataError
    return SetupError, DataError, NetworkLoadError, TrainingError, FolderLocked


def _worker(rank, c, run_dir, images, labels, resume, progress, tmp):
    """One process of a multi-process run. A user-facing error is pickled to tmp/error-RANK.pkl for launch() to
    raise in the parent (torch's spawn would turn it into a traceback)."""
    import pickle
    import sys
    from torch_utils import distributed
    from fsgan.training_loop import training_loop
    distributed.init(rank, c.num_gpus, os.path.join(tmp, 'init'), 'cuda' if c.device == 'cuda' else 'cpu')
    try:
        training_loop(c, run_dir, images, resume=resume, progress=progress, labels=labels)
        distributed.barrier()  # no rank tears the group down while another still uses it
    except _user_errors() as e:
        with open(os.path.join(tmp, f'error-{rank}.pkl'), 'wb') as f:
            pickle.dump(e, f)
        sys.exit(1)
    finally:
        distributed.shutdown()


def _raise_worker_error(tmp, exc):
    """Re-raise in the parent the user-facing error a worker left in tmp (the lowest rank's), else `exc`."""
    import pickle
    names = sorted((n for n in os.listdir(tmp) if n.startswith('error-')), key=lambda n: int(n[6:-4]))
    if not names:
        raise exc
    with open(os.path.join(tmp, names[0]), 'rb') as f:
        raise pickle.load(f) from None


def launch(c, run_dir, images, labels=None, resume=False, progress=True):
    """Run the training loop in this process, or in c.num_gpus processes (a worker's user-facing error, e.g.
    TrainingError, is raised here as itself)."""
    from fsgan.training_loop import training_loop
    if c.get('num_gpus', 1) == 1:
        training_loop(c, run_dir, images, resume=resume, progress=progress, labels=labels)
        return
    import logging
    import tempfile
    import torch.multiprocessing as mp
    # spawn logs a warning for each worker it stops after another failed; the failure itself is reported
    logging.getLogger('torch.multiprocessing.spawn').setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            mp.spawn(_worker, args=(c, run_dir, images, labels, resume, progress, tmp), nprocs=c.num_gpus, join=True)
        except (mp.ProcessExitedException, mp.ProcessRaisedException) as e:
            _raise_worker_error(tmp, e)


@contextlib.contextmanager
def naming_run(run_dir):
    """Let a KeyboardInterrupt or OSError that leaves the block carry the run folder (for the resume advice)."""
    try:
        yield
    except (KeyboardInterrupt, OSError) as e:
        e.run_dir = run_dir
        raise


def _resume(c, run_dir, progress, record_options=False):
    """Continue run_dir from its checkpoint (the caller holds the folder's lock); record_options: first write `c`
    into its training_options.json (a run extended by --kimg, or given --checkpoint-ticks or -minutes)."""
    import numpy as np
    from dnnlib.fileio import remove_abandoned_temps
    from fsgan.options import write_training_options
    remove_abandoned_temps(run_dir)  # left by a kill mid-write; the lock keeps writers out
    images = np.load(os.path.join(run_dir, 'target_shots.npy'))
    labels = None
    if c.get('cond'):
        labels_path = os.path.join(run_dir, 'target_labels.npy')
        if not os.path.isfile(labels_path):
            raise SetupError(f'--resume-run {run_dir}: this --cond run has no target_labels.npy; restore it '
                             f'or start a new run')
        labels = np.load(labels_path)
    if record_options:
        write_training_options(os.path.join(run_dir, 'training_options.json'), c)
    with naming_run(run_dir):
        launch(c, run_dir, images, labels, resume=True, progress=progress)
    return run_dir


def run_training(c, resume_run=None, progress=True, dry_run=False):
    """Prepare data and run folder, then train. Returns the run folder (None for a dry run).

    The run folder is locked while it trains (dnnlib.lock): a second process refuses to train in it.
    """
    from dnnlib.lock import folder_lock
    from training.dataset import load_target
    from fsgan.training_loop import write_run_files
    import numpy as np
    if resume_run is not None:
        with folder_lock(resume_run):
            return _resume(c, resume_run, progress)
    resolution, channels, c_dim = network_geometry(c)
    if channels is None:  # from scratch: keep the data's channel count (1 for grayscale sources)
        channels = 1 if _looks_grayscale(c.target_dir) else 3
    target = load_target(c.target_dir, resolution, channels, shots=c.shots, seed=c.seed)
    for note in target.notes:
        print(f'[data] {note}')
    labels = target_labels(c, target, c_dim)
    if c.source is None:
        c.G_kwargs, c.D_kwargs = scratch_kwargs(c.cfg, channels, 0 if labels is None else int(labels.max()) + 1)
    c.resolution = resolution
    images = target.images
    if dry_run:
        print_dry_run(c, images)
        return None
    desc = f'{c.method}-{len(images)}shot' if c.source is not None else f'scratch-{c.cfg}'
    run_dir = next_run_dir(c.outdir, desc)
    print(f'Run folder: {run_dir}')
    try:
        with folder_lock(run_dir), naming_run(run_dir):
            write_run_files(run_dir, c, target.record())
            from dnnlib.fileio import atomic_open
            with atomic_open(os.path.join(run_dir, 'target_shots.npy')) as f:
                np.save(f, images)
            if labels is not None:
                with atomic_open(os.path.join(run_dir, 'target_labels.npy')) as f:
                    np.save(f, labels)
            launch(c, run_dir, images, labels, progress=progress)
    except BaseException:
        remove_unstarted_run(run_dir)
        raise
    return run_dir


def remove_unstarted_run(run_dir):
    """Remove the run folder this process just made when the run stopped before its first checkpoint (e.g. a
    method option its networks refuse): it holds nothing to resume, only the run files written here."""
    import shutil
    if os.path.isdir(run_dir) and not os.path.exists(os.path.join(run_dir, 'checkpoint.pt')):
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f'Removed {run_dir}: the run stopped before its first checkpoint')


def _looks_grayscale(path):
    """True when the first image of the target folder/zip is single-channel (False when it cannot be read:
    load_target then names it)."""
    from training.dataset import ImageSource
    import PIL.Image
    import io
    source = ImageSource(path)
    if not source.names:
        return False
    try:
        return PIL.Image.open(io.BytesIO(source.read(source.names[0]))).mode in ('L', 'I;16', 'I', '1')
    except (OSError, ValueError):
        return False


def print_dry_run(c, images):
    """Print the resolved options and the trainable counts of every method, then return."""
    from fsgan.training_loop import build_networks
    from fsgan.methods import adapt
    from fsgan.methods.freezed import paper_depth
    print(json.dumps(c, indent=2, sort_keys=True))
    print(f'targets: {list(images.shape)} uint8')
    print(protocols.describe(c))
    for name in sorted(METHODS):
        G, D, _G_ema, _src = build_networks(c, 'cpu')
        opts = c.method_options if name == c.method else {}
        if name == 'freezed' and name != c.method and c.source is not None:
            depth = protocols.protocol_defaults(c.get('protocol', 'ours'))['freezed']
            opts = dict(freezed=paper_depth(D) if depth == 'paper' else depth)
        params = adapt(G, D, method=name, **opts)
        print(f'trainable[{name}]: {sum(p.numel() for p in params):,}')


def run_kimg(run_dir, c):
    """kimg trained by the checkpointed run in run_dir (options `c`, from load_run_options)."""
    from fsgan.training_loop import read_checkpoint
    return int(read_checkpoint(run_dir, c, mmap=True)['cur_nimg']) / 1000


def continue_run(run_dir, kimg=None, dry_run=False, progress=True, checkpoint_ticks=None, checkpoint_minutes=None):
    """--resume-run: continue run_dir from its checkpoint; `kimg` extends the run, `checkpoint_ticks` and
    `checkpoint_minutes` set --checkpoint-ticks and --checkpoint-minutes (each recorded in its options when given).

    Returns run_dir, or None when nothing ran: a dry run (prints the plan) or a finished run (says so).
    """
    from dnnlib.lock import folder_lock
    from fsgan.loading import source_sha256
    from fsgan.run_options import load_run_options
    from fsgan.training_loop import check_checkpoint_source, read_checkpoint
    c = load_run_options(run_dir)
    c.kimg = float(c.kimg if kimg is None else check_value(BY_NAME['kimg'], kimg))
    if checkpoint_ticks is not None:
        c.checkpoint_ticks = check_value(BY_NAME['checkpoint_ticks'], checkpoint_ticks)
    if checkpoint_minutes is not None:
        c.checkpoint_minutes = check_value(BY_NAME['checkpoint_minutes'], checkpoint_minutes)
    done_kimg = run_kimg(run_dir, c)
    if kimg is not None and kimg <= done_kimg:
        raise SetupError(f'--kimg {kimg:g}: the run in {run_dir} is already at kimg {done_kimg:g}; give a larger '
                         f'--kimg to extend it')
    if dry_run:
        print(json.dumps(c, indent=2, sort_keys=True))
        print(f'--dry-run: would continue {run_dir} from kimg {done_kimg:g} to {c.kimg:g}')
        return None
    if done_kimg >= c.kimg:
        print(f'{run_dir} is finished (kimg {done_kimg:g} of {c.kimg:g}); give --kimg to extend it')
        return None
    if c.get('source'):  # before anything is written: the run must go on from the network it trained from
        check_checkpoint_source(read_checkpoint(run_dir, c, mmap=True), source_sha256(c.source), c.source, run_dir)
    with folder_lock(run_dir):
        return _resume(c, run_dir, progress, record_options=(kimg, checkpoint_ticks, checkpoint_minutes) != (None,) * 3)


def report_last_snapshot(run_dir):
    """Print where the last snapshot of a finished run is."""
    from fsgan.export import latest_artefact
    if run_dir is not None:
        snapshot = latest_artefact(run_dir, 'network-snapshot-', '.pkl')
        print(f'Last snapshot: {snapshot}' if snapshot else f'No snapshot in {run_dir}')
