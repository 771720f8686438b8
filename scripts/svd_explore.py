"""What the top singular values of one generator layer do to its images (FSGAN paper, Figure 2.3).

Examples:
  python scripts/svd_explore.py --network ffhq256 --list
  python scripts/svd_explore.py --network ffhq256 --layer synthesis.b8.conv0 --top 3 --scales -2,-1,0,1,2 --seeds 0-3 --out fig.png

The layer's weight is flattened to W [out, in*k*k] (as fsgan's re-parameterisation does) and
factored W = sum_j sigma_j u_j v_j^T, sigma_1 >= sigma_2 >= .... Scale s of singular value i
(1-based, i <= --top) means sigma_i -> s * sigma_i with every other sigma_j unchanged, i.e.
W' = W + (s - 1) sigma_i u_i v_i^T (s = 1: the unmodified network, exactly; s = 0: direction i
removed; s < 0: direction i flipped; s > 1: magnified, as in the paper). Each direction is scaled
on its own, never together.

Figure layout: one row per (singular value i, seed), i outer and seed inner (rows: sv1 seed a,
sv1 seed b, ..., sv2 seed a, ...); one column per scale in the order given; the row label names
i, sigma_i and the seed, the column header the scale.
"""
import click

from fsgan.sampling import NOISE_MODE_HELP
from fsgan.tools.cli import FINITE, command, device_option, overwrite_option
from fsgan.tools.svd_explore import layer_table, write_svd_figure


@command()
@click.option('--network', required=True, metavar='PATH|URL|NAME', help='Network pickle, URL or short name.')
@click.option('--adapter', type=click.Path(dir_okay=False), help='Adapter file to apply to --network.')
@click.option('--list', 'list_only', is_flag=True,
              help='Print the layer names, weight shapes and singular-value counts.')
@click.option('--layer', help='Layer name as --list prints it, e.g. synthesis.b8.conv0 or mapping.fc0.')
@click.option('--top', type=int, default=3, show_default=True,
              help='Scale each of the top K singular values (one at a time).')
@click.option('--scales', default='-2,-1,0,1,2', show_default=True, help='Factors s: sigma_i -> s * sigma_i.')
@click.option('--seeds', default='0-3', show_default=True, help='Seeds (one row each per singular value).')
@click.option('--trunc', type=FINITE, default=0.8, show_default=True, help='Truncation psi.')
@click.option('--noise-mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True,
              help=NOISE_MODE_HELP)
@click.option('--class', 'class_idx', type=int, help='Class label of a conditional network [default: seed % number of classes].')
@click.option('--cell', type=int, help='Pixel size of each image in the figure [default: from the resolution].')
@click.option('--out', type=click.Path(dir_okay=False), help='Figure path (.png).')
@overwrite_option('an existing --out file')
@device_option()
def main(network, adapter, list_only, layer, top, scales, seeds, trunc, noise_mode, class_idx, cell, out, overwrite,
         device):
    """Render images while scaling single top singular values of one layer (rows: value x seed, columns: scale)."""
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError
    try:
        if list_only:
            for line in layer_table(network, adapter, device):
                click.echo(line)
            return
        result = write_svd_figure(network, layer, out, adapter=adapter, top=top, scales=scales, seeds=seeds,
                                  trunc=trunc, noise_mode=noise_mode, class_idx=class_idx, device=device, cell=cell,
                                  overwrite=overwrite)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f'--out {out}: cannot write it ({e})') from None
    click.echo(f'Wrote {result["path"]} ({result["rows"]} rows x {result["cols"]} scales)')


if __name__ == '__main__':
    main()
