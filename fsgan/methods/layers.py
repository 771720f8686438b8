"""Which layers of a StyleGAN2 G/D each method touches, by name."""
import torch

from training import networks


def mapping_fcs(G):
    """(name, layer) of the mapping network's FC layers fc0..fcN (not the label embedding)."""
    return [(f'mapping.fc{i}', getattr(G.mapping, f'fc{i}')) for i in range(G.mapping.num_layers)]


def synthesis_convs(G):
    """(name, SynthesisLayer) of every synthesis conv, the 4x4 one included."""
    return [(f'synthesis.{name}', m) for name, m in G.synthesis.named_modules()
            if isinstance(m, networks.SynthesisLayer)]


def affines(G):
    """(name, FullyConnectedLayer) of every style affine layer (synthesis convs and toRGB)."""
    return [(f'synthesis.{name}.affine', m.affine) for name, m in G.synthesis.named_modules()
            if isinstance(m, (networks.SynthesisLayer, networks.ToRGBLayer))]


def torgbs(G):
    """(name, ToRGBLayer) of every toRGB layer."""
    return [(f'synthesis.{name}', m) for name, m in G.synthesis.named_modules()
            if isinstance(m, networks.ToRGBLayer)]


def d_layers_from_image(D):
    """(name, layer) of D's block layers in the order Freeze-D counts them: from the image inwards.

    Per block b{R} ... b8: fromrgb (if any), conv0, conv1, skip (if any); then the epilogue
    b4: fromrgb (if any), conv, fc, out.
    """
    out = []
    for res in D.block_resolutions:
        block = getattr(D, f'b{res}')
        for key in ('fromrgb', 'conv0', 'conv1', 'skip'):
            if hasattr(block, key) and isinstance(getattr(block, key), torch.nn.Module):
                out.append((f'b{res}.{key}', getattr(block, key)))
    for key in ('fromrgb', 'conv', 'fc', 'out'):
        if hasattr(D.b4, key) and isinstance(getattr(D.b4, key), torch.nn.Module):
            out.append((f'b4.{key}', getattr(D.b4, key)))
    return out


def d_convs(D):
    """(name, Conv2dLayer) of every D block conv0/conv1 and the epilogue's 4x4 conv."""
    out = []
    for res in D.block_resolutions:
        block = getattr(D, f'b{res}')
        out += [(f'b{res}.conv0', block.conv0), (f'b{res}.conv1', block.conv1)]
    out.append(('b4.conv', D.b4.conv))
    return out
