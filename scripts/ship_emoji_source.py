"""Ship a pretrained emoji snapshot as data/emoji/source_emoji64.pkl with its training record and report.

  python scripts/ship_emoji_source.py --snapshot runs/00000-scratch-emoji64/network-snapshot-000500.000.pkl
  python scripts/ship_emoji_source.py --snapshot ... --report-only --num 1000   # figures only, nothing written

The report: Inception FID of --num samples against every Noto image and the floor (held-out against training
images), the share the emoji classifier calls Noto, category shares against the real set.
Details: fsgan/benchmarks/emoji/source.py. Needs data/emoji/cache/noto_train.zip (scripts/make_emoji_data.py).
"""
import json
import tempfile

import click

from fsgan.benchmarks.emoji.source import DATA_DIR, ship_emoji_source, source_report
from fsgan.tools.cli import command, overwrite_option


@command()
@click.option('--snapshot', required=True, type=click.Path(exists=True, dir_okay=False),
              help='network-snapshot-*.pkl inside a scripts/train.py run folder.')
@click.option('--num', type=click.IntRange(min=2), default=5000, show_default=True, help='Samples for the report.')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), default='cpu', show_default=True)
@click.option('--report-only', is_flag=True, help='Print the report of the snapshot; write nothing into data/emoji.')
@click.option('--no-report', is_flag=True, help='Ship without the report (no Inception weights needed).')
@click.option('--data-dir', type=click.Path(file_okay=False), default=DATA_DIR, show_default=True,
              help='Where the source, its record and previews/source_samples.png go.')
@overwrite_option('a source already in --data-dir (its record\'s stages carry over)')
def main(snapshot, num, device, report_only, no_report, data_dir, overwrite):
    """Copy the snapshot into data/emoji and record its training stages and report."""
    if report_only:
        if no_report:
            raise click.UsageError('--report-only and --no-report exclude each other; give one')
        from fsgan.benchmarks.emoji.source import check_source_generator
        from fsgan.loading import NetworkLoadError
        from fsgan.sampling import load_generator
        try:
            G_cpu, _sha = load_generator(snapshot)
        except NetworkLoadError as e:
            raise click.ClickException(f'--snapshot {str(e).splitlines()[0]}') from None
        check_source_generator(G_cpu, device)
        G = G_cpu.to(device)
        with tempfile.TemporaryDirectory(prefix='fsgan-source-') as tmp:
            print(json.dumps(source_report(G, tmp, num, device=device), indent=2))
        return
    record = ship_emoji_source(snapshot, data_dir=data_dir, num=num, device=device, report=not no_report,
                               overwrite=overwrite)
    if record['report'] is not None:
        print(json.dumps(record['report'], indent=2))
    print(f'Shipped {data_dir}/source_emoji64.pkl (sha256 {record["sha256"]}, {record["kimg"]} kimg)')


if __name__ == '__main__':
    main()
