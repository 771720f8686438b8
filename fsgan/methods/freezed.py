"""FreezeD (Mo et al., 2020): fine-tune everything but the D layers nearest the image.

`freezed=K` freezes the first K D layers counted from the image (fromrgb, conv0, conv1, skip
of the highest-resolution block, then the next block, ...), as stylegan2-ada-pytorch's
--freezed option does.
"""
from . import layers
from .registry import MethodSpec, register


def paper_depth(D, min_res=32):
    """The FreezeD depth of the FSGAN paper for this D: every layer of the blocks of resolution >= min_res.

    On config-f 1024 that is blocks 1024..32, 19 layers, leaving 46.89M of 59.38M tensors trainable
    (the paper's 47M). A D whose image is smaller than min_res gets 0.
    """
    return sum(1 for name, _layer in layers.d_layers_from_image(D) if int(name[1:].split('.')[0]) >= min_res)


def apply(G, D, freezed=4):
    if freezed < 0:
        raise ValueError(f'--freezed must be >= 0, got {freezed}')
    trainable = list(G.parameters())
    if D is not None:
        ordered = layers.d_layers_from_image(D)
        if freezed > len(ordered):
            raise ValueError(f'--freezed {freezed} exceeds the {len(ordered)} layers of this discriminator')
        frozen = {id(p) for _name, layer in ordered[:freezed] for p in layer.parameters()}
        trainable += [p for p in D.parameters() if id(p) not in frozen]
    return trainable


register(MethodSpec(
    name='freezed',
    apply=apply,
    description='fine-tune all but the K D layers nearest the image (FreezeD); --freezed K',
    lr=0.0003,
    update_w_avg=True,
    options=dict(freezed=4),
))
