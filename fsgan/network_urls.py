"""Short names for NVIDIA's published StyleGAN2 network pickles (accepted by fsgan.loading.load_network)."""

_ADA = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained'
_TRANSFER = f'{_ADA}/transfer-learning-source-nets'
_TF = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks'

NETWORK_URLS = {
    # stylegan2-ada-pytorch transfer-learning sources (PyTorch pickles).
    'ffhq256': f'{_TRANSFER}/ffhq-res256-mirror-paper256-noaug.pkl',
    'ffhq512': f'{_TRANSFER}/ffhq-res512-mirror-stylegan2-noaug.pkl',
    'ffhq1024': f'{_TRANSFER}/ffhq-res1024-mirror-stylegan2-noaug.pkl',
    'celebahq256': f'{_TRANSFER}/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl',
    'lsundog256': f'{_TRANSFER}/lsundog-res256-paper256-kimg100000-noaug.pkl',
    # stylegan2-ada-pytorch paper networks (PyTorch pickles).
    'ffhq': f'{_ADA}/ffhq.pkl',
    'metfaces': f'{_ADA}/metfaces.pkl',
    'afhqcat': f'{_ADA}/afhqcat.pkl',
    'afhqdog': f'{_ADA}/afhqdog.pkl',
    'afhqwild': f'{_ADA}/afhqwild.pkl',
    'brecahad': f'{_ADA}/brecahad.pkl',
    'cifar10': f'{_ADA}/cifar10.pkl',
    # Original StyleGAN2, config F (TensorFlow pickles, converted on load).
    'stylegan2-ffhq-config-f': f'{_TF}/stylegan2-ffhq-config-f.pkl',
    'stylegan2-church-config-f': f'{_TF}/stylegan2-church-config-f.pkl',
    'stylegan2-car-config-f': f'{_TF}/stylegan2-car-config-f.pkl',
    'stylegan2-cat-config-f': f'{_TF}/stylegan2-cat-config-f.pkl',
    'stylegan2-horse-config-f': f'{_TF}/stylegan2-horse-config-f.pkl',
}

