"""FSGAN (Robb et al., 2020): train only a scale per singular value of each pretrained weight.

Layers: every mapping FC layer, every synthesis conv (the 4x4 one included), every D block
conv, and D's epilogue conv, fc and out. On a config-f 1024 G+D that is 16,225 trainable
numbers (G 9,664, D 6,561). Options add the style affines and toRGB layers, or leave the mapping
network out (adapt_mapping=False). full_d=True trains every D tensor instead (G stays re-parameterised):
a hybrid for far domains, where D's frozen source features limit what it can tell apart; give D its
own rate with --dlr (e.g. TransferGAN's 0.002), since --lr is also D's rate by default.
"""
from . import layers, reparam
from .registry import MethodSpec, register


def apply(G, D, adapt_affine=False, adapt_torgb=False, adapt_mapping=True, train_sigma=False, centered=False,
          full_d=False):
    targets = (layers.mapping_fcs(G) if adapt_mapping else []) + layers.synthesis_convs(G)
    if adapt_affine:
        targets += layers.affines(G)
    if adapt_torgb:
        targets += layers.torgbs(G)
    if D is not None and not full_d:
        targets += [(n, m) for n, m in layers.d_layers_from_image(D) if n.split('.')[-1] in ('conv0', 'conv1', 'conv', 'fc', 'out')]
    trainable = []
    for _name, layer in targets:
        svd = reparam.SingularValueScale(layer.weight, train_sigma=train_sigma, centered=centered)
        reparam.add(layer, 'weight', svd)
        trainable.append(svd.trainable())
    if D is not None and full_d:
        trainable += list(D.parameters())
    return trainable


register(MethodSpec(
    name='fsgan',
    apply=apply,
    description='scale each singular value of every conv/FC weight (Robb et al. 2020); ~16K numbers',
    lr=0.003,
    update_w_avg=False,
    options=dict(adapt_affine=False, adapt_torgb=False, adapt_mapping=True, train_sigma=False, centered=False,
                 full_d=False),
))
