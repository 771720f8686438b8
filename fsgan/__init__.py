"""fsgan: few-shot adaptation of pretrained StyleGAN2 networks.

    import fsgan
    net = fsgan.load_network('ffhq256')            # {'G', 'D', 'G_ema', 'training_set_kwargs', 'sha256'}
    params = fsgan.adapt(net['G'], net['D'], method='fsgan')
"""
from .loading import NetworkLoadError, load_network  # noqa: F401
from .methods import METHODS, adapt  # noqa: F401
