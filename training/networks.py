"""StyleGAN2 generator and discriminator (Karras et al., CVPR 2020), in stylegan2-ada-pytorch's layout.

Class names, constructor signatures, module hierarchy and parameter/buffer names follow
stylegan2-ada-pytorch, so network pickles map 1:1. This module imports only torch, numpy and
`torch_utils` modules that stylegan2-ada-pytorch also provides, because its text is embedded
in the project's snapshots (see torch_utils/persistence.py).

Weights are stored raw and scaled at run time (equalized learning rate): a layer with fan-in
`n` multiplies its weight by 1 / sqrt(n) (times the lr multiplier for FC layers).
"""
import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample
from torch_utils.ops import fma
from torch_utils.ops import upfirdn2d


def _half_allowed(x):
    """float16 blocks run only on CUDA; everywhere else the network runs in float32."""
    return x is not None and x.device.type == 'cuda'


@misc.profiled_function
def normalize_2nd_moment(x, dim=1, eps=1e-8):
    """Scale x so its mean square along `dim` is 1."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def _modulated_conv2d_unfused(x, weight, styles, dcoefs, noise, up, down, padding, resample_filter, flip_weight):
    """modulated_conv2d without fusing: scale the activations by styles [N, C_in], one shared conv for the batch,
    then scale by dcoefs [N, C_out] (None: no demodulation) and add noise."""
    batch_size = x.shape[0]
    x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
    x = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                        padding=padding, flip_weight=flip_weight)
    if dcoefs is not None and noise is not None:
        x = fma.fma(x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
    elif dcoefs is not None:
        x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
    elif noise is not None:
        x = x.add_(noise.to(x.dtype))
    return x


def _reduced_precision():
    """True inside conv2d_resample.compute_dtype(torch.bfloat16) (train.py --bf16-conv). Read through getattr:
    snapshots embed this file, and stylegan2-ada-pytorch's conv2d_resample, which runs it there, lacks the setting."""
    return getattr(conv2d_resample, 'active_compute_dtype', lambda: None)() is not None


def demodulation_coefficients(weight, styles):
    """StyleGAN2's demodulation 1 / sqrt(sum_{i,k} (s_i w_oik)^2 + 1e-8) for weight [C_out, C_in, kh, kw] and
    styles [N, C_in], as the product styles^2 [N, C_in] @ sum_k w^2 [C_in, C_out]; returns [N, C_out].
    Equal to the per-sample form up to float32 rounding (about 1e-7 relative) without building the
    [N, C_out, C_in, kh, kw] modulated weights: modulated_conv2d uses it in the reduced-precision mode, where
    bfloat16's rounding (about 4e-3) dwarfs that difference, and keeps the per-sample form otherwise, which
    matches stylegan2-ada-pytorch bit for bit."""
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()


@misc.profiled_function
def modulated_conv2d(
    x,                          # Input: [N, C_in, H, W].
    weight,                     # Raw weight: [C_out, C_in, kh, kw].
    styles,                     # Per-sample input-channel scales: [N, C_in].
    noise=None,                 # Added after demodulation: [N, C_out, H', W'] (broadcastable) or None.
    up=1,                       # Integer upsampling factor.
    down=1,                     # Integer downsampling factor.
    padding=0,                  # Padding at the (upsampled) input resolution.
    resample_filter=None,       # Filter from upfirdn2d.setup_filter; needed when up/down > 1.
    demodulate=True,            # Normalise each output channel to unit expected variance (StyleGAN2 Eq. 3)?
    flip_weight=True,           # False = true convolution (used with up > 1).
    fused_modconv=True,         # One grouped conv over the batch instead of scaling activations?
    out_gain=None,              # Per-output-channel gain applied after demodulation, before noise: [C_out] or None.
):
    """Modulated (and demodulated) convolution; returns [N, C_out, H', W']."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(weight, [out_channels, in_channels, kh, kw])
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    misc.assert_shape(styles, [batch_size, in_channels])

    # Keep float16 activations in range by pre-normalising weight and styles.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    w = None
    dcoefs = None
    from_products = demodulate and not fused_modconv and _reduced_precision()
    if (demodulate and not from_products) or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)  # [N, C_out, C_in, kh, kw]
    if from_products:
        dcoefs = demodulation_coefficients(weight, styles)
    elif demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, C_out]
    if out_gain is not None:
        misc.assert_shape(out_gain, [out_channels])
        ones = torch.ones([batch_size, out_channels], dtype=weight.dtype, device=weight.device)
        dcoefs = out_gain.unsqueeze(0) * (dcoefs if dcoefs is not None else ones)
        demodulate = True  # From here on, dcoefs holds the per-channel output scale (w exists when fused).
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)

    if not fused_modconv:
        return _modulated_conv2d_unfused(x, weight, styles, dcoefs if demodulate else None, noise, up, down,
                                         padding, resample_filter, flip_weight)

    # Fused: fold the batch into groups of one grouped convolution.
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=resample_filter, up=up, down=down,
                                        padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)
    return x


@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate: y = act(x @ (W * gain).T + b * lr_multiplier)."""

    def __init__(self,
        in_features,                # Number of input features.
        out_features,               # Number of output features.
        bias=True,                  # Apply additive bias before the activation?
        activation='linear',        # Activation name, see bias_act.activation_funcs.
        lr_multiplier=1,            # Learning rate multiplier.
        bias_init=0,                # Initial value of the bias.
    ):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        """x: [N, in_features] -> [N, out_features]."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act.bias_act(x, b, act=self.activation)


@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    """Conv layer with equalized learning rate, optional up/downsampling, bias, activation and clamp."""

    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        kernel_size,                    # Width and height of the kernel.
        bias=True,                      # Apply additive bias before the activation?
        activation='linear',            # Activation name, see bias_act.activation_funcs.
        up=1,                           # Integer upsampling factor.
        down=1,                         # Integer downsampling factor.
        resample_filter=[1, 3, 3, 1],   # Low-pass filter for resampling.
        conv_clamp=None,                # Clamp the output to +-X, None = disable clamping.
        channels_last=False,            # Store the weight in channels_last memory format?
        trainable=True,                 # False = weight and bias are buffers (frozen, e.g. Freeze-D).
    ):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer('weight', weight)
            if bias is not None:
                self.register_buffer('bias', bias)
            else:
                self.bias = None

    def forward(self, x, gain=1):
        """x: [N, C_in, H, W] -> [N, C_out, H * up // down, W * up // down]."""
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = (self.up == 1)  # Slightly faster this way.
        x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=self.resample_filter, up=self.up,
                                            down=self.down, padding=self.padding, flip_weight=flip_weight)
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)


@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """z (and label c) -> w, broadcast to num_ws copies, with truncation towards w_avg."""

    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality, 0 = no latent.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = no label.
        w_dim,                      # Intermediate latent (W) dimensionality.
        num_ws,                     # Number of intermediate latents to output, None = do not broadcast.
        num_layers=8,               # Number of mapping layers.
        embed_features=None,        # Label embedding dimensionality, None = same as w_dim.
        layer_features=None,        # Number of intermediate features in the mapping layers, None = same as w_dim.
        activation='lrelu',         # Activation function.
        lr_multiplier=0.01,         # Learning rate multiplier for the mapping layers.
        w_avg_beta=0.995,           # Decay for tracking the moving average of W during training, None = do not track.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features_list = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features_list[idx], features_list[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        """z: [N, z_dim], c: [N, c_dim] -> w: [N, num_ws, w_dim] (or [N, w_dim] if num_ws is None).

        truncation: w <- w_avg + psi * (w - w_avg), for the first `truncation_cutoff` ws only if given.
        """
        x = None
        with torch.autograd.profiler.record_function('input'):
            if self.z_dim > 0:
                misc.assert_shape(z, [None, self.z_dim])
                x = normalize_2nd_moment(z.to(torch.float32))
            if self.c_dim > 0:
                misc.assert_shape(c, [None, self.c_dim])
                y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
                x = torch.cat([x, y], dim=1) if x is not None else y

        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            with torch.autograd.profiler.record_function('update_w_avg'):
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            with torch.autograd.profiler.record_function('broadcast'):
                x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        if truncation_psi != 1:
            with torch.autograd.profiler.record_function('truncate'):
                assert self.w_avg_beta is not None, 'truncation needs w_avg'
                if self.num_ws is None or truncation_cutoff is None:
                    x = self.w_avg.lerp(x, truncation_psi)
                else:
                    x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + noise + bias + activation."""

    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) dimensionality.
        resolution,                     # Resolution of this layer.
        kernel_size=3,                  # Convolution kernel size.
        up=1,                           # Integer upsampling factor.
        use_noise=True,                 # Enable noise input?
        activation='lrelu',             # Activation function.
        resample_filter=[1, 3, 3, 1],   # Low-pass filter for upsampling.
        conv_clamp=None,                # Clamp the output to +-X, None = disable clamping.
        channels_last=False,            # Use channels_last format for the weights?
        channel_gain=False,             # Learnable per-output-channel gain after demodulation (SSGAN)?
    ):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.channel_gain = torch.nn.Parameter(torch.ones([out_channels])) if channel_gain else None

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1):
        """x: [N, C_in, r/up, r/up], w: [N, w_dim] -> [N, C_out, r, r].

        noise_mode: 'random' (fresh noise), 'const' (stored noise_const) or 'none'.
        """
        assert noise_mode in ('random', 'const', 'none'), f'noise_mode must be random, const or none, not {noise_mode!r}'
        in_resolution = self.resolution // self.up
        misc.assert_shape(x, [None, self.weight.shape[1], in_resolution, in_resolution])
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        if self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength

        flip_weight = (self.up == 1)  # Slightly faster this way.
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=flip_weight, fused_modconv=fused_modconv,
                             out_gain=getattr(self, 'channel_gain', None))

        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=act_gain, clamp=act_clamp)


@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation."""

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x, w, fused_modconv=True):
        """x: [N, C_in, r, r], w: [N, w_dim] -> [N, img_channels, r, r]."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: [upsampling conv0], conv1, [toRGB], [skip]."""

    def __init__(self,
        in_channels,                    # Number of input channels, 0 = first block (learned const input).
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) dimensionality.
        resolution,                     # Resolution of this block.
        img_channels,                   # Number of output color channels.
        is_last,                        # Is this the last block?
        architecture='skip',            # Architecture: 'orig', 'skip', 'resnet'.
        resample_filter=[1, 3, 3, 1],   # Low-pass filter for upsampling.
        conv_clamp=None,                # Clamp the output of convolution layers to +-X, None = disable clamping.
        use_fp16=False,                 # Use float16 for this block (CUDA only)?
        fp16_channels_last=False,       # Use channels-last memory format with float16?
        **layer_kwargs,                 # Arguments for SynthesisLayer.
    ):
        assert architecture in ('orig', 'skip', 'resnet'), f'Unknown architecture {architecture!r}'
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        """x: [N, C_in, r/2, r/2] or None, img: [N, img_channels, r/2, r/2] or None,
        ws: [N, num_conv + num_torgb, w_dim] -> (x [N, C_out, r, r], img [N, img_channels, r, r] or None)."""
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim])
        w_iter = iter(ws.unbind(dim=1))
        use_half = self.use_fp16 and not force_fp32 and _half_allowed(ws)
        dtype = torch.float16 if use_half else torch.float32
        memory_format = torch.channels_last if self.channels_last and use_half else torch.contiguous_format
        if fused_modconv is None:
            with misc.suppress_tracer_warnings():
                fused_modconv = (not self.training) and (dtype == torch.float32 or int(ws.shape[0]) == 1)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            misc.assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2])
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            misc.assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2])
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add_(y) if img is not None else y

        assert x.dtype == dtype
        assert img is None or img.dtype == torch.float32
        return x, img


@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R], blocks b4 ... bR."""

    def __init__(self,
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output image resolution.
        img_channels,               # Number of color channels.
        channel_base=32768,         # Overall multiplier for the number of channels.
        channel_max=512,            # Maximum number of channels in any layer.
        num_fp16_res=0,             # Use float16 for the N highest resolutions (CUDA only).
        **block_kwargs,             # Arguments for SynthesisBlock.
    ):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0, \
            f'img_resolution must be a power of two >= 4, got {img_resolution}'
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res // 2] if res > 4 else 0
            out_channels = channels_dict[res]
            use_fp16 = (res >= fp16_resolution)
            is_last = (res == self.img_resolution)
            block = SynthesisBlock(in_channels, out_channels, w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=use_fp16, **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)

    def forward(self, ws, **block_kwargs):
        """ws: [N, num_ws, w_dim] -> img [N, img_channels, R, R] (float32)."""
        block_ws = []
        with torch.autograd.profiler.record_function('split_ws'):
            misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
            ws = ws.to(torch.float32)
            w_idx = 0
            for res in self.block_resolutions:
                block = getattr(self, f'b{res}')
                block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
                w_idx += block.num_conv

        x = img = None
        for res, cur_ws in zip(self.block_resolutions, block_ws):
            block = getattr(self, f'b{res}')
            x, img = block(x, img, cur_ws, **block_kwargs)
        return img


@persistence.persistent_class
class Generator(torch.nn.Module):
    """G(z, c, truncation_psi, truncation_cutoff, noise_mode, force_fp32) -> images [N, C, R, R] in about [-1, 1]."""

    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality.
        c_dim,                      # Conditioning label (C) dimensionality.
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution.
        img_channels,               # Number of output color channels.
        mapping_kwargs={},          # Arguments for MappingNetwork.
        synthesis_kwargs={},        # Arguments for SynthesisNetwork.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        """z: [N, z_dim], c: [N, c_dim] (empty [N, 0] when unconditional) -> img [N, img_channels, R, R]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)


@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    """One resolution of D: [fromRGB], conv0, downsampling conv1, [skip]."""

    def __init__(self,
        in_channels,                    # Number of input channels, 0 = first block.
        tmp_channels,                   # Number of intermediate channels.
        out_channels,                   # Number of output channels.
        resolution,                     # Resolution of this block.
        img_channels,                   # Number of input color channels.
        first_layer_idx,                # Index of the first layer (counted from the highest resolution).
        architecture='resnet',          # Architecture: 'orig', 'skip', 'resnet'.
        activation='lrelu',             # Activation function.
        resample_filter=[1, 3, 3, 1],   # Low-pass filter for downsampling.
        conv_clamp=None,                # Clamp the output of convolution layers to +-X, None = disable clamping.
        use_fp16=False,                 # Use float16 for this block (CUDA only)?
        fp16_channels_last=False,       # Use channels-last memory format with float16?
        freeze_layers=0,                # Freeze-D: the first `freeze_layers` layers of D are buffers.
    ):
        assert in_channels in (0, tmp_channels)
        assert architecture in ('orig', 'skip', 'resnet'), f'Unknown architecture {architecture!r}'
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))

        self.num_layers = 0

        def next_trainable():
            trainable = (self.first_layer_idx + self.num_layers) >= freeze_layers
            self.num_layers += 1
            return trainable

        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       trainable=next_trainable(), conv_clamp=conv_clamp,
                                       channels_last=self.channels_last)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 trainable=next_trainable(), conv_clamp=conv_clamp, channels_last=self.channels_last)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 trainable=next_trainable(), resample_filter=resample_filter, conv_clamp=conv_clamp,
                                 channels_last=self.channels_last)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=next_trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        """x: [N, C_in, r, r] or None, img: [N, img_channels, r, r] or None -> (x [N, C_out, r/2, r/2], img or None)."""
        ref = x if x is not None else img
        use_half = self.use_fp16 and not force_fp32 and _half_allowed(ref)
        dtype = torch.float16 if use_half else torch.float32
        memory_format = torch.channels_last if self.channels_last and use_half else torch.contiguous_format

        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        if self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)

        assert x.dtype == dtype
        return x, img


@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    """Append the stddev over groups of samples as extra feature maps."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        """x: [N, C, H, W] -> [N, C + num_channels, H, W]; N must be divisible by the group size."""
        N, C, H, W = x.shape
        with misc.suppress_tracer_warnings():
            G = min(self.group_size, N) if self.group_size is not None else N
        F = self.num_channels
        c = C // F
        if N % G != 0:
            raise ValueError(f'Minibatch-stddev group size {G} does not divide the batch size {N}')

        y = x.reshape(G, -1, F, c, H, W)    # [GnFcHW] Split minibatch N into n groups of size G.
        y = y - y.mean(dim=0)               # [GnFcHW] Subtract mean over group.
        y = y.square().mean(dim=0)          # [nFcHW]  Variance over group.
        y = (y + 1e-8).sqrt()               # [nFcHW]  Stddev over group.
        y = y.mean(dim=[2, 3, 4])           # [nF]     Average over channels and pixels.
        y = y.reshape(-1, F, 1, 1)          # [nF11]
        y = y.repeat(G, 1, H, W)            # [NFHW]   Replicate over group and pixels.
        return torch.cat([x, y], dim=1)


@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    """D's 4x4 head: [fromRGB], minibatch-stddev, conv, fc, out (projected onto cmap when conditional)."""

    def __init__(self,
        in_channels,                # Number of input channels.
        cmap_dim,                   # Dimensionality of mapped conditioning label, 0 = no label.
        resolution,                 # Resolution of this block.
        img_channels,               # Number of input color channels.
        architecture='resnet',      # Architecture: 'orig', 'skip', 'resnet'.
        mbstd_group_size=4,         # Group size for the minibatch standard deviation layer, None = entire minibatch.
        mbstd_num_channels=1,       # Number of features for the minibatch standard deviation layer, 0 = disable.
        activation='lrelu',         # Activation function.
        conv_clamp=None,            # Clamp the output of convolution layers to +-X, None = disable clamping.
    ):
        assert architecture in ('orig', 'skip', 'resnet'), f'Unknown architecture {architecture!r}'
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels) \
            if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * (resolution ** 2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False, all_classes=False):
        """x: [N, C, 4, 4], cmap: [N, cmap_dim] or None -> logits [N, 1] (float32); all_classes: cmap is
        [K, cmap_dim] for K classes and the result [N, K] holds every sample's logit for every class."""
        misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
        dtype = torch.float32
        x = x.to(dtype=dtype, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            x = x + self.fromrgb(img.to(dtype=dtype, memory_format=torch.contiguous_format))

        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)

        if self.cmap_dim > 0 and all_classes:
            misc.assert_shape(cmap, [None, self.cmap_dim])
            x = x @ cmap.t() * (1 / np.sqrt(self.cmap_dim))
        elif self.cmap_dim > 0:
            misc.assert_shape(cmap, [None, self.cmap_dim])
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        assert x.dtype == dtype
        return x


@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """D(img, c) -> logits [N, 1]: blocks bR ... b8, then the 4x4 epilogue b4."""

    def __init__(self,
        c_dim,                          # Conditioning label (C) dimensionality.
        img_resolution,                 # Input resolution.
        img_channels,                   # Number of input color channels.
        architecture='resnet',          # Architecture: 'orig', 'skip', 'resnet'.
        channel_base=32768,             # Overall multiplier for the number of channels.
        channel_max=512,                # Maximum number of channels in any layer.
        num_fp16_res=0,                 # Use float16 for the N highest resolutions (CUDA only).
        conv_clamp=None,                # Clamp the output of convolution layers to +-X, None = disable clamping.
        cmap_dim=None,                  # Dimensionality of mapped conditioning label, None = default.
        block_kwargs={},                # Arguments for DiscriminatorBlock.
        mapping_kwargs={},              # Arguments for MappingNetwork.
        epilogue_kwargs={},             # Arguments for DiscriminatorEpilogue.
    ):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0, \
            f'img_resolution must be a power of two >= 4, got {img_resolution}'
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        if cmap_dim is None:
            cmap_dim = channels_dict[4]
        if c_dim == 0:
            cmap_dim = 0

        common_kwargs = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        cur_layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res] if res < img_resolution else 0
            tmp_channels = channels_dict[res]
            out_channels = channels_dict[res // 2]
            use_fp16 = (res >= fp16_resolution)
            block = DiscriminatorBlock(in_channels, tmp_channels, out_channels, resolution=res,
                                       first_layer_idx=cur_layer_idx, use_fp16=use_fp16,
                                       **block_kwargs, **common_kwargs)
            setattr(self, f'b{res}', block)
            cur_layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels_dict[4], cmap_dim=cmap_dim, resolution=4,
                                        **epilogue_kwargs, **common_kwargs)

    def _blocks(self, img, **block_kwargs):
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = None
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            x, img = block(x, img, **block_kwargs)
        return x, img

    def forward(self, img, c, **block_kwargs):
        """img: [N, img_channels, R, R], c: [N, c_dim] -> logits [N, 1]."""
        x, img = self._blocks(img, **block_kwargs)
        cmap = None
        if self.c_dim > 0:
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)

    def class_logits(self, img, **block_kwargs):
        """Conditional D: img [N, img_channels, R, R] -> [N, c_dim], column k = D(img, one-hot k), in one pass."""
        assert self.c_dim > 0, 'class_logits needs a conditional discriminator'
        x, img = self._blocks(img, **block_kwargs)
        eye = torch.eye(self.c_dim, device=x.device)
        return self.b4(x, img, self.mapping(None, eye), all_classes=True)
