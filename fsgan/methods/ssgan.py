"""Scale-and-shift (SSGAN, Noguchi & Harada 2019): per-channel gamma and beta after each conv.

G: after every synthesis conv's modulation/demodulation and before noise and bias, gamma
scales each output channel (SynthesisLayer.channel_gain) and beta shifts it (added to the
bias; noise and bias are both additive, so the order is immaterial). D: after every block
conv and the epilogue's 4x4 conv, gamma scales the weight's output channels and beta shifts
the bias. Only gamma and beta train: 23,232 numbers on a config-f 1024 G+D.
"""
import torch

from . import layers, reparam
from .registry import MethodSpec, register


def _enable_channel_gain(G):
    """Give every SynthesisLayer a channel_gain of ones and record it in G's init kwargs."""
    gains = []
    for _name, layer in layers.synthesis_convs(G):
        layer.channel_gain = torch.nn.Parameter(torch.ones_like(layer.bias))
        gains.append(layer.channel_gain)
    if hasattr(G, '_init_kwargs'):
        synthesis_kwargs = dict(G._init_kwargs.get('synthesis_kwargs', {}))
        synthesis_kwargs['channel_gain'] = True
        G._init_kwargs['synthesis_kwargs'] = synthesis_kwargs
    return gains


def apply(G, D):
    trainable = _enable_channel_gain(G)
    for _name, layer in layers.synthesis_convs(G):
        trainable.append(reparam.add(layer, 'bias', reparam.ChannelShift(layer.bias.shape[0], layer.bias.device)).beta)
    if D is not None:
        for _name, layer in layers.d_convs(D):
            n = layer.weight.shape[0]
            trainable.append(reparam.add(layer, 'weight', reparam.ChannelScale(n, layer.weight.device)).gamma)
            trainable.append(reparam.add(layer, 'bias', reparam.ChannelShift(n, layer.weight.device)).beta)
    return trainable


register(MethodSpec(
    name='ssgan',
    apply=apply,
    description='per-channel scale and shift after every conv (SSGAN); ~23K numbers',
    lr=0.0003,
    update_w_avg=False,
))
