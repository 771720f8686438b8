"""Self-check of a machine in one command: native ops against a float64 truth, the bundled NVIDIA
fixtures, one training step per method, training speed, and an end-to-end train + generate run.

    python -m fsgan.selfcheck                              # CUDA when available, else the CPU
    python -m fsgan.selfcheck --device cpu --quick --json selfcheck.json

Prints a line per section as it finishes and a table at the end. The JSON (rewritten atomically after
every section, so an interrupted run keeps what finished) holds `header` and one key per section, each
with `status`, `seconds`, `summary` and the section's details. Statuses: 'pass'; 'warn' (results are
correct, but something to read: a reference off the truth, an op that fell back to the reference, a
float16 network beyond its tolerance); 'fail'; 'error' (the section raised; traceback recorded);
'skipped'. The exit code is 1 when a section failed or raised.

--quick shrinks everything (32 px networks, 3 steps, one batch size, a 64 px SVD set-up) for a run of
well under a minute on a CPU; without it the speed section times stylegan2-ada-pytorch's paper256
configuration, which is meant for a GPU.
"""
import datetime
import os
import platform
import sys
import time
import traceback

import click
import torch

from dnnlib import EasyDict
from dnnlib.fileio import atomic_write_json
from fsgan import provenance, selfcheck_sections as checks
from torch_utils.ops import native
from fsgan.training_loop import configure_backends, set_tf32

SECTIONS = {
    'ops': checks.check_ops,
    'fixtures': checks.check_fixtures,
    'methods': checks.check_methods,
    'speed': checks.check_speed,
    'end_to_end': checks.check_end_to_end,
}
FAILING = ('fail', 'error')


def header(device, quick):
    """Versions, device, date and commit of this run."""
    info = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                platform=platform.platform(), device=device.type, threads=torch.get_num_threads(),
                quick=quick, git=provenance.git_commit(), command=provenance.command_line(),
                tf32=dict(matmul=torch.backends.cuda.matmul.allow_tf32, cudnn=torch.backends.cudnn.allow_tf32),
                cudnn_benchmark=torch.backends.cudnn.benchmark)
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, capability=f'{props.major}.{props.minor}',
                    memory_gib=round(props.total_memory / 2 ** 30, 1), device_count=torch.cuda.device_count())
    else:
        info.update(device_name=provenance.device_name(device), cpu_count=os.cpu_count())
    return info


def run_section(fn, ctx):
    """fn(ctx) -> dict with 'status' and 'summary'; an exception becomes status 'error'. Adds 'seconds'."""
    start = time.perf_counter()
    try:
        out = fn(ctx)
    except Exception as e:  # noqa: BLE001 -- a crashed section is recorded, the others still run
        out = dict(status='error', summary=f'{type(e).__name__}: {str(e).strip()[:300]}',
                   traceback=traceback.format_exc()[-6000:])
    finally:
        if ctx.device.type == 'cuda':
            torch.cuda.empty_cache()
    out['seconds'] = round(time.perf_counter() - start, 2)
    return out


def format_table(report, names):
    """One line per section: name, status, seconds, summary."""
    lines = [f'{"section":<11} {"status":<7} {"seconds":>8}  summary']
    for name in names:
        sec = report.get(name)
        if sec is not None:
            lines.append(f'{name:<11} {sec["status"]:<7} {sec["seconds"]:>8.1f}  {sec.get("summary", "")}')
    return '\n'.join(lines)


def run_selfcheck(device, quick, json_path, names):
    """Run the sections `names` in order, rewriting json_path after each; returns the report."""
    ctx = EasyDict(device=device, quick=quick)
    configure_backends(device, allow_tf32=False)  # the training policy on CUDA; and the flags, on any device:
    set_tf32(False)  # cuDNN's default TF32 convolutions differ from NVIDIA's float32 fixture outputs by ~3e-3
    report = dict(header=header(device, quick))
    atomic_write_json(json_path, report)
    for name in names:
        print(f'[selfcheck] {name} ...', flush=True)
        report[name] = run_section(SECTIONS[name], ctx)
        report['header']['native_build'] = native.build_status()
        atomic_write_json(json_path, report)
        sec = report[name]
        print(f'[selfcheck] {name}: {sec["status"]} in {sec["seconds"]:.1f} s: {sec.get("summary", "")}', flush=True)
    print(format_table(report, names))
    print(f'[selfcheck] JSON: {json_path}')
    return report


@click.command(context_settings=dict(help_option_names=['-h', '--help']))
@click.option('--device', type=click.Choice(['cuda', 'cpu']), help='Device [default: cuda when available].')
@click.option('--quick', is_flag=True, help='Small networks and few steps (a CPU run of well under a minute).')
@click.option('--json', 'json_path', default='selfcheck.json', show_default=True, type=click.Path(dir_okay=False),
              help='Where to write the JSON report (rewritten after every section).')
@click.option('--sections', default=','.join(SECTIONS), show_default=True,
              help='Comma-separated sections to run, in this order.')
def main(device, quick, json_path, sections):
    """Check native ops, fixtures, methods, speed and an end-to-end run on this machine."""
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException('--device cuda: CUDA is not available here; use --device cpu')
    names = [s.strip() for s in sections.split(',') if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown or not names:
        raise click.ClickException(f'--sections {sections!r}: choose from {", ".join(SECTIONS)}')
    parent = os.path.dirname(os.path.abspath(json_path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise click.ClickException(f'--json {json_path}: folder {parent} does not exist or is not writable')
    report = run_selfcheck(torch.device(device), quick, json_path, names)
    sys.exit(1 if any(report[n]['status'] in FAILING for n in names) else 0)


if __name__ == '__main__':
    main()
