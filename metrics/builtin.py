"""The built-in metrics, registered in metrics.registry.REGISTRY on import."""

import os

import numpy as np

from metrics.registry import Column, register

# Shared by the metrics that report pixel-space memorisation (here and in benchmark metric modules).
MEMORISED_PIXEL = Column('memorised_pixel', 'Memorised (pixel)', '.1%', 'down', value='fraction_pixel',
                         note='share of samples closer in pixels to a training shot than any two shots are to '
                              'each other (real images that copy nothing score above 0 too: read it against held-out '
                              'real images, compare.py --reference).')


def _mean_std(values):
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std())


@register('fid', help='FID vs --data (test set) and/or --shots-dir; with both also the ratio test-FID / shots-FID',
          needs=('data|shots',), size_dependent=True,
          columns=(Column('fid_test', 'FID test', '.2f', 'down', value='fid'), Column('fid_shots', 'FID shots')))
def fid_metric(ctx):
    from metrics.frechet import fid_from_features

    gen = ctx.features('gen')
    values = dict(num_gen=len(gen))
    if ctx.data is not None:
        values['fid'] = fid_from_features(gen, ctx.features('data'))
        values['num_data'] = len(ctx.data)
    if ctx.shots is not None:
        values['fid_shots'] = fid_from_features(gen, ctx.features('shots'))
        values['num_shots'] = len(ctx.shots)
    if 'fid' in values and 'fid_shots' in values:
        values['fid_ratio'] = values['fid'] / values['fid_shots'] if values['fid_shots'] > 0 else float('inf')
    value = values['fid'] if 'fid' in values else values['fid_shots']
    return dict(value=value, values=values, options=ctx.detector_options())


@register('kid', help='KID vs --data: unbiased MMD^2, cubic kernel, mean over subsets (x1e3 not applied)',
          needs=('data',), version=2,
          columns=(Column('kid', 'KID', '.5f', 'down', std='kid_std'), Column('kid_std', 'KID std', '.5f')))
def kid_metric(ctx):
    from metrics.frechet import kid

    gen, real = ctx.features('gen'), ctx.features('data')
    mean, std = kid(gen, real, num_subsets=ctx.kid_subsets, max_subset_size=ctx.kid_subset_size, seed=ctx.seed)
    m = min(len(gen), len(real), ctx.kid_subset_size)
    if m == len(gen) == len(real):
        std = None      # (version 2) one evaluation over both sets whole: no spread to report, not a spread of 0
    values = dict(kid=mean, kid_std=std, num_gen=len(gen), num_data=len(real))
    options = dict(ctx.detector_options(), num_subsets=ctx.kid_subsets, subset_size=m)
    return dict(value=mean, values=values, options=options)


@register('sharpness', help='Kumar et al. 2012 sharpness (pydom conventions), mean and std over images',
          columns=(Column('sharpness_mean', 'Sharpness', '.3f', 'up', value='mean', std='sharpness_std'),
                   Column('sharpness_std', 'Sharpness std', '.3f', value='std')))
def sharpness_metric(ctx):
    from metrics.sharpness import sharpness

    mean, std = _mean_std([sharpness(im) for im in ctx.gen])
    values = dict(mean=mean, std=std, num_gen=len(ctx.gen))
    if ctx.data is not None:
        n = min(len(ctx.data), len(ctx.gen))
        values['data_mean'], values['data_std'] = _mean_std([sharpness(ctx.data.read(i)) for i in range(n)])
        values['num_data'] = n
    options = dict(width=2, sharpness_threshold=2.0, edge_threshold=1e-4)
    return dict(value=mean, values=values, options=options)


@register('fqi', help='face-quality index: MTCNN probability x landmark plausibility (or FaceQnet with --faceqnet)',
          columns=(Column('fqi_mean', 'FQI', '.3f', 'up', value='mean', std='fqi_std'),
                   Column('fqi_std', 'FQI std', '.3f', value='std')))
def fqi_metric(ctx):
    from metrics.face_quality import FaceQuality

    fq = FaceQuality(device=ctx.device, faceqnet=ctx.faceqnet)
    scores = [fq.score(im) for im in ctx.gen]
    mean, std = _mean_std([s['fqi'] for s in scores])
    values = dict(mean=mean, std=std, face_rate=float(np.mean([s['face'] for s in scores])),
                  prob_mean=float(np.mean([s['prob'] for s in scores])),
                  landmarks_mean=float(np.mean([s['landmarks'] for s in scores])), num_gen=len(scores))
    options = dict(mode='faceqnet' if ctx.faceqnet else 'mtcnn', faceqnet=ctx.faceqnet, max_side=fq.max_side)
    return dict(value=mean, values=values, options=options)


@register('nearest_real', needs=('shots', 'data'),
          columns=(Column('nearest_shot', 'Nearest real is a shot', '.1%', 'down', value='shot_share',
                          note='share of samples whose nearest real image (Inception features, the shots and the '
                               'test set together) is a training shot rather than a held-out test image; copies '
                               'score 100%, samples that copy nothing about shots / (shots + test images).'),
                   Column('nearest_ratio', 'Shot / test distance', '.2f', 'up', value='median_ratio',
                          note='median over samples of the distance to the nearest shot over that to the nearest '
                               'test image (Inception features).')),
          help='memorisation against the test set: share of samples nearer a shot than any test image (--data), '
               'and the median distance ratio')
def nearest_real_metric(ctx):
    from metrics.memorization import nearest_real
    out = nearest_real(ctx.features('gen'), ctx.features('shots'), ctx.features('data'))
    values = dict(shot_share=out['shot_share'], median_ratio=out['median_ratio'], num_gen=len(ctx.gen),
                  num_shots=len(ctx.shots), num_data=len(ctx.data))
    return dict(value=out['shot_share'], values=values)


@register('memorization', needs=('shots',),
          columns=(Column('memorised_inception', 'Memorised (Inception)', '.1%', 'down', value='fraction_inception',
                          note='share of samples closer (Inception features) to a training shot than any two '
                               'shots are to each other (real images that copy nothing score above 0 too: read it '
                               'against held-out real images, compare.py --reference).'),
                   MEMORISED_PIXEL),
          help='fraction of samples nearer a shot than any two shots are (Inception and 64x64 pixel space); '
               'saves a PNG of the closest pairs')
def memorization_metric(ctx, top_k=8):
    from metrics.images import downsample_area, save_grid
    from metrics.memorization import memorization

    inc = memorization(ctx.features('gen'), ctx.features('shots'))
    gen_px = np.concatenate([downsample_area(b, 64).reshape(len(b), -1) for b in ctx.gen.batches(ctx.batch_size)])
    shot_px = downsample_area(list(ctx.shots), 64).reshape(len(ctx.shots), -1)
    pix = memorization(gen_px, shot_px)
    flagged_inc = inc['dist'] < inc['tau']
    flagged_pix = pix['dist'] < pix['tau']
    values = dict(fraction_inception=inc['fraction'], fraction_pixel=pix['fraction'],
                  fraction_both=float(np.mean(flagged_inc & flagged_pix)),
                  tau_inception=inc['tau'], tau_pixel=pix['tau'],
                  median_ratio_inception=float(np.median(inc['dist'] / inc['tau'])) if inc['tau'] > 0 else None,
                  median_ratio_pixel=float(np.median(pix['dist'] / pix['tau'])) if pix['tau'] > 0 else None,
                  num_gen=len(ctx.gen), num_shots=len(ctx.shots))
    # Figure: the top_k samples closest to a shot in Inception space (distance relative to tau).
    order = np.argsort(inc['dist'])[:top_k]
    rows, captions = [], []
    for i in order:
        rows.append([ctx.gen.read(int(i)), ctx.shots.read(int(inc['nearest'][i])),
                     ctx.shots.read(int(pix['nearest'][i]))])
        captions.append(f'#{i}: inc d/tau={inc["dist"][i] / max(inc["tau"], 1e-12):.2f}  '
                        f'px d/tau={pix["dist"][i] / max(pix["tau"], 1e-12):.2f}')
    figure = os.path.join(ctx.fig_dir, f'memorization-{ctx.tag}.png')
    save_grid(rows, figure, captions=captions,
              title='generated | nearest shot (Inception) | nearest shot (64x64 pixels)')
    options = dict(ctx.detector_options(), pixel_size=64, figure=figure,
                   figure_columns='generated | nearest shot (Inception) | nearest shot (pixels)')
    return dict(value=inc['fraction'], values=values, options=options)


@register('intra_lpips', needs=('shots',), columns=(Column('intra_lpips', 'Intra-LPIPS', '.4f', 'up'),),
          help='CDC intra-cluster LPIPS: the first 1000 samples join their nearest shot\'s cluster, mean pairwise '
               'LPIPS within clusters (<=50 each); LPIPS-VGG weights downloaded once (or --lpips-weights)')
def intra_lpips_metric(ctx):
    from metrics import lpips
    from metrics.diversity import CDC_NUM_GEN, intra_lpips

    lp = lpips.lpips_vgg(ctx.lpips_weights, device=ctx.device)
    out = intra_lpips(lp, ctx.gen, ctx.shots, device=ctx.device, batch_size=ctx.batch_size)
    values = dict(intra_lpips=out.pop('value'), **out, num_shots=len(ctx.shots))
    weights = ctx.lpips_weights or [w.url for w in lpips.LPIPS_VGG_DOWNLOADS]
    options = dict(lpips_weights=weights, res=256, max_per_cluster=50, max_gen=CDC_NUM_GEN)
    return dict(value=values['intra_lpips'], values=values, options=options)


@register('intra_inception', needs=('shots',),
          columns=(Column('intra_inception', 'Intra-cluster Inception distance', '.2f', 'up',
                          note='mean pairwise Inception distance among the samples nearest each shot (at most 50 '
                               'per shot), averaged over the shots with two or more; higher is more diverse, but not '
                               "better past the real target images' own value (compare.py --reference)."),),
          help='offline diversity: CDC-style intra-cluster mean pairwise L2 distance of Inception features')
def intra_inception_metric(ctx):
    from metrics.diversity import intra_cluster_from_features

    out = intra_cluster_from_features(ctx.features('gen'), ctx.features('shots'))
    values = dict(intra_inception=out.pop('value'), **out, num_gen=len(ctx.gen), num_shots=len(ctx.shots))
    options = dict(ctx.detector_options(), max_per_cluster=50)
    return dict(value=values['intra_inception'], values=values, options=options)
