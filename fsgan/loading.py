"""Safe loading of StyleGAN2 network pickles.

Two formats are read (tests/fixtures/FORMATS.md describes both):
  * stylegan2-ada-pytorch snapshots, also written by this project: a dict with G, D, G_ema whose networks are
    persistent objects (class name + instance state). Their embedded module source is never executed: every
    network is rebuilt from training.networks.<class_name>(*_init_args, **_init_kwargs) and then filled by
    tensor name.
  * TensorFlow StyleGAN2 / StyleGAN2-ADA pickles: a (G, D, Gs) tuple of Network states whose kwargs and
    variables are converted to the PyTorch layout (G -> G, D -> D, Gs -> G_ema).

Unpickling is restricted to the handful of globals these formats use; anything else is refused before it
can run. read_network_pickle() gives the stored tensors without building modules; load_network() builds them.
"""

import collections
import hashlib
import importlib
import io
import math
import os
import pickle
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from dnnlib.util import EasyDict, open_url
from fsgan.network_urls import NETWORK_URLS


class NetworkLoadError(Exception):
    """A network pickle could not be read, was refused, or does not match training.networks."""


class _FormatError(Exception):
    """Raised while unpickling; turned into a NetworkLoadError that names the file."""


def _list_names(names, limit=12):
    """'a, b, c (+N more)' for error messages."""
    names = list(names)
    text = ', '.join(str(n) for n in names[:limit])
    return text + (f' (+{len(names) - limit} more)' if len(names) > limit else '') if names else '(none)'


def _first_line(exc):
    """First line of an exception's text (torch's messages span many lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ----------------------------------------------------------------------------
# Stand-ins created by the restricted unpickler.

class PersistentRecord:
    """A persistent network object as stored: class_name and its instance state dict (module source dropped)."""

    def __init__(self, class_name, state):
        self.class_name = class_name
        self.state = state

    def __repr__(self):
        return f'PersistentRecord({self.class_name!r})'


def _make_record(meta):
    """Replacement for torch_utils.persistence._reconstruct_persistent_obj(meta)."""
    if not (isinstance(meta, dict) and meta.get('type') == 'class' and isinstance(meta.get('class_name'), str)
            and isinstance(meta.get('state'), dict)):
        keys = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise _FormatError(f'persistent object with unexpected meta ({keys}); expected type "class", class_name, state')
    return PersistentRecord(meta['class_name'], meta['state'])


class TFNetworkStub:
    """Stand-in for dnnlib.tflib.network.Network: keeps the pickled state dict in `state`."""

    def __init__(self):
        self.state = None

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise _FormatError(f'TensorFlow Network state is {type(state).__name__}, expected a dict')
        self.state = state


class _NDArrayMarker:
    """What numpy.ndarray resolves to: only accepted as the first argument of _reconstruct."""


_NUMPY_DTYPE_RE = re.compile(r'[<>|=]?(b1|\?|[iu][1248]|f[248]|c8|c16)')


class _NumpyDType:
    """Stand-in for a pickled numpy.dtype; only plain bool / int / float / complex types are accepted."""

    def __init__(self, spec, align=False, copy=True):
        if not (isinstance(spec, str) and _NUMPY_DTYPE_RE.fullmatch(spec)):
            raise _FormatError(f'numpy dtype {spec!r} refused: only numeric dtypes occur in network pickles')
        self.dtype = np.dtype(spec)

    def __setstate__(self, state):
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags); structured types are refused.
        if not (isinstance(state, tuple) and len(state) >= 5 and all(s is None for s in state[2:5])
                and state[1] in ('<', '>', '|', '=')):
            raise _FormatError('numpy dtype with an unexpected state refused (structured or subarray dtype?)')
        if state[1] in ('<', '>'):
            self.dtype = self.dtype.newbyteorder(state[1])


class _SafeArray(np.ndarray):
    """ndarray rebuilt from pickled (shape, numeric dtype, raw bytes) after checking them."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise _FormatError('numpy array with an unexpected pickle state')
        version, shape, dtype, fortran, raw = state
        if not (isinstance(dtype, _NumpyDType) and isinstance(shape, tuple)
                and all(type(s) is int and s >= 0 for s in shape) and isinstance(raw, bytes)):
            raise _FormatError('numpy array with an unexpected pickle state (shape, dtype or data)')
        if len(raw) != math.prod(shape) * dtype.dtype.itemsize:
            raise _FormatError(f'numpy array data has {len(raw)} bytes, shape {shape} {dtype.dtype} needs '
                               f'{math.prod(shape) * dtype.dtype.itemsize}')
        super().__setstate__((version, shape, dtype.dtype, bool(fortran), raw))


def _numpy_reconstruct(subtype, shape, typecode):
    """Replacement for numpy's _reconstruct: an empty _SafeArray that the following BUILD fills."""
    if subtype is not _NDArrayMarker:
        raise _FormatError('numpy _reconstruct of a type other than numpy.ndarray refused')
    return _SafeArray((0,), dtype=np.uint8)


def _numpy_scalar(dtype, data):
    """Replacement for numpy's scalar(dtype, bytes), numeric dtypes only."""
    if not (isinstance(dtype, _NumpyDType) and isinstance(data, bytes) and len(data) == dtype.dtype.itemsize):
        raise _FormatError('numpy scalar with an unexpected dtype or data length refused')
    return np.frombuffer(data, dtype=dtype.dtype)[0]


def _load_storage(data):
    """Replacement for torch.storage._load_from_bytes: a legacy torch.save stream of one storage, read with
    torch.load(weights_only=True) (torch's own restricted unpickler), mapped to the CPU."""
    if not isinstance(data, bytes):
        raise _FormatError('tensor storage data is not bytes')
    try:
        storage = torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    except Exception as exc:
        raise _FormatError(f'tensor storage refused by torch.load(weights_only=True): {_first_line(exc)}') from None
    if not isinstance(storage, torch.TypedStorage):
        raise _FormatError(f'tensor storage data holds a {type(storage).__name__}, expected a storage')
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """Checked torch._utils._rebuild_tensor_v2 (torch itself checks size/stride against the storage)."""
    if not isinstance(storage, torch.TypedStorage) or backward_hooks:
        raise _FormatError('tensor with an unexpected storage or with backward hooks refused')
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
                                           backward_hooks, metadata)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """Checked torch._utils._rebuild_parameter."""
    if not isinstance(data, torch.Tensor) or backward_hooks:
        raise _FormatError('parameter with unexpected data or with backward hooks refused')
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad))


def _allowed_globals():
    """(module, name) -> object for every global a network pickle may reference."""
    table = {
        ('torch_utils.persistence', '_reconstruct_persistent_obj'): _make_record,
        ('dnnlib.util', 'EasyDict'): EasyDict,
        ('dnnlib.tflib.network', 'Network'): TFNetworkStub,
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('builtins', 'set'): set,
        ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
        ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
        ('torch.storage', '_load_from_bytes'): _load_storage,
        ('torch', 'Size'): torch.Size,
        ('torch', 'device'): torch.device,
        ('numpy', 'ndarray'): _NDArrayMarker,
        ('numpy', 'dtype'): _NumpyDType,
    }
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        table[(module, 'scalar')] = _numpy_scalar
        table[(module, '_reconstruct')] = _numpy_reconstruct
    table.update({('torch', n): v for n, v in vars(torch).items() if isinstance(v, torch.dtype)})
    return table


_ALLOWED_GLOBALS = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only _ALLOWED_GLOBALS (exact module and name; no dotted attribute paths)."""

    def find_class(self, module, name):
        obj = _ALLOWED_GLOBALS.get((module, name))
        if obj is None:
            raise _FormatError(f'refused global {module}.{name}: it is not part of a StyleGAN2 network pickle, '
                               f'so nothing was executed; only load network pickles from sources you trust')
        return obj

    def persistent_load(self, pid):
        raise _FormatError('pickle uses persistent ids, which network pickles never do')


_GUARDED_ATTRS = ('__defaults__', '__kwdefaults__')


def _guarded_state():
    """{id: (object, its attribute dict, its defaults)} of every object a network pickle may reference: a BUILD
    opcode aimed at one of them (not at an instance) would set attributes on it for the whole process."""
    state = {}
    for obj in _ALLOWED_GLOBALS.values():
        attrs = dict(vars(obj)) if hasattr(obj, '__dict__') else None
        state[id(obj)] = (obj, attrs, tuple(getattr(obj, a, None) for a in _GUARDED_ATTRS))
    return state


def _check_guarded_state(before):
    """Undo any change a pickle made to the objects of _guarded_state and refuse it (_FormatError)."""
    changed = []
    for obj, attrs, defaults in before.values():
        now = dict(vars(obj)) if attrs is not None else None
        same_attrs = attrs is None or (now.keys() == attrs.keys() and all(now[k] is attrs[k] for k in attrs))
        same_defaults = all(getattr(obj, a, None) is d for a, d in zip(_GUARDED_ATTRS, defaults))
        if same_attrs and same_defaults:
            continue
        changed.append(getattr(obj, '__name__', type(obj).__name__))
        for key in set(now) - set(attrs):
            delattr(obj, key)
        for key, value in attrs.items():
            if now.get(key) is not value:
                setattr(obj, key, value)
        for a, d in zip(_GUARDED_ATTRS, defaults):
            if hasattr(obj, a) and getattr(obj, a) is not d:
                setattr(obj, a, d)
    if changed:
        raise _FormatError(f'the pickle tries to change {", ".join(sorted(changed))} rather than build objects; '
                           f'refused (the change was undone); only load network pickles from sources you trust')


def restricted_unpickle(data, name='<bytes>'):
    """Unpickle `data` (bytes) allowing only network-pickle globals. Errors are NetworkLoadError naming `name`."""
    if not data:
        raise NetworkLoadError(f'{name}: file is empty (0 bytes); delete it and download or save it again')
    if data[:1] != b'\x80':  # every pickle of protocol >= 2 starts with the PROTO opcode
        if data[:4] == b'PK\x03\x04':
            hint = 'it is a zip archive, e.g. a torch.save checkpoint or a dataset'
        elif data.lstrip()[:1] == b'<':
            hint = 'it looks like HTML/XML text, e.g. an error page saved in place of the file'
        else:
            hint = f'it starts with {data[:8]!r}'
        raise NetworkLoadError(f'{name}: not a network pickle ({hint}); pass a stylegan2-ada-pytorch / fsgan '
                               f'snapshot .pkl or a TensorFlow StyleGAN2 .pkl')
    before = _guarded_state()
    try:
        result = _RestrictedUnpickler(io.BytesIO(data)).load()
        _check_guarded_state(before)
        return result
    except _FormatError as exc:
        raise NetworkLoadError(f'{name}: {exc}') from None
    except (EOFError, pickle.UnpicklingError) as exc:
        raise NetworkLoadError(f'{name}: truncated or corrupt pickle ({_first_line(exc)}); delete the file and '
                               f'download or save it again') from exc
    except Exception as exc:
        raise NetworkLoadError(f'{name}: malformed network pickle ({type(exc).__name__}: {_first_line(exc)}); '
                               f'the file is damaged or not a StyleGAN2 network pickle') from exc


# ----------------------------------------------------------------------------
# Stored networks, independent of training.networks.

@dataclass
class NetworkState:
    """A network as stored in a pickle.

    class_name: 'Generator' or 'Discriminator' (for records: any class name).
    init_args, init_kwargs: constructor arguments for training.networks.<class_name>.
    tensors: dotted state_dict name -> tensor, exactly as stored (dtype, shape and bits).
    kinds: name -> 'parameter' or 'buffer' as stored (Freeze-D layers keep weights as buffers).
    submodules: dotted path -> class_name of each stored submodule (empty for TF pickles).
    attributes: dotted path ('' = top) -> plain attributes stored with that object (empty for TF pickles).
    """
    class_name: str
    init_args: tuple
    init_kwargs: dict
    tensors: 'collections.OrderedDict[str, torch.Tensor]' = field(default_factory=collections.OrderedDict)
    kinds: dict = field(default_factory=dict)
    submodules: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)


_ATTR_NAME_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_MAX_DEPTH = 32


def record_to_state(record, name='<record>'):
    """Convert a PersistentRecord tree to a NetworkState (class name, init args/kwargs, tensors by dotted name).

    Walks `_parameters`, `_buffers` (minus `_non_persistent_buffers_set`) and `_modules` in state_dict order;
    plain dicts and OrderedDicts are both accepted. Raises NetworkLoadError naming `name`.
    """
    if not isinstance(record, PersistentRecord):
        raise NetworkLoadError(f'{name}: expected a persistent network object, got {type(record).__name__}')
    args, kwargs = record.state.get('_init_args'), record.state.get('_init_kwargs')
    if not (isinstance(args, (tuple, list)) and isinstance(kwargs, dict)
            and all(isinstance(k, str) for k in kwargs)):
        raise NetworkLoadError(f'{name}: {record.class_name} has no usable _init_args / _init_kwargs, so it cannot '
                               f'be rebuilt; save it with torch_utils.persistence')
    out = NetworkState(record.class_name, tuple(args), dict(kwargs))
    _walk_record(record, '', out, name, 0)
    return out


def _walk_record(record, prefix, out, name, depth):
    """Add the tensors, submodule class names and plain attributes of `record` (path `prefix`) to `out`."""
    where = f'{name}: {prefix.rstrip(".") or record.class_name}'
    if depth > _MAX_DEPTH:
        raise NetworkLoadError(f'{where}: modules nested more than {_MAX_DEPTH} deep')
    state = record.state
    containers = {key: state.get(key) or {} for key in ('_parameters', '_buffers', '_modules')}
    non_persistent = state.get('_non_persistent_buffers_set') or set()
    if not (all(isinstance(c, dict) for c in containers.values()) and isinstance(non_persistent, set)):
        raise NetworkLoadError(f'{where}: _parameters / _buffers / _modules are not dicts')
    for kind, key in (('parameter', '_parameters'), ('buffer', '_buffers')):
        for tname, tensor in containers[key].items():
            if tensor is None or (kind == 'buffer' and tname in non_persistent):
                continue
            if not (isinstance(tname, str) and _ATTR_NAME_RE.fullmatch(tname) and isinstance(tensor, torch.Tensor)):
                raise NetworkLoadError(f'{where}: {key} entry {tname!r} is not a named tensor')
            full = prefix + tname
            if full in out.tensors:
                raise NetworkLoadError(f'{where}: tensor {full} is stored twice')
            out.tensors[full] = tensor
            out.kinds[full] = kind
    out.attributes[prefix.rstrip('.')] = {k: v for k, v in state.items()
                                          if isinstance(k, str) and not k.startswith('_') and k != 'training'}
    for mname, sub in containers['_modules'].items():
        if sub is None:
            continue
        if not (isinstance(mname, str) and _ATTR_NAME_RE.fullmatch(mname) and isinstance(sub, PersistentRecord)):
            raise NetworkLoadError(f'{where}: submodule {mname!r} is not a persistent network object')
        out.submodules[prefix + mname] = sub.class_name
        _walk_record(sub, f'{prefix}{mname}.', out, name, depth + 1)


def _resample_filter(kernel, what):
    """resample_filter buffer for a kernel list (None = [1]): float32; 1-D kernels with fewer than 8 taps become
    their outer product, longer ones stay separable; divided by its sum. Shape [k, k] or [k]."""
    try:
        f = torch.as_tensor(1 if kernel is None else kernel, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        f = None
    if f is None or f.ndim > 2 or f.numel() == 0:
        raise NetworkLoadError(f'{what}: resample_kernel {kernel!r} is not a 1-D or 2-D list of numbers')
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


# ----------------------------------------------------------------------------
# TensorFlow pickles -> NetworkState.

class _KwargReader:
    """Reads TF static_kwargs with defaults and reports keys nobody read."""

    def __init__(self, static_kwargs, what, ignored):
        self.kwargs, self.what, self.used = static_kwargs, what, set(ignored)

    def get(self, key, default):
        self.used.add(key)
        return self.kwargs.get(key, default)

    def int(self, key, default):
        value = self.get(key, default)
        if type(value) is not int:
            raise NetworkLoadError(f'{self.what}: TensorFlow kwarg {key}={value!r} must be an integer')
        return value

    def choice(self, key, default, choices):
        value = self.get(key, default)
        if value not in choices:
            raise NetworkLoadError(f'{self.what}: TensorFlow kwarg {key}={value!r} must be one of {choices}')
        return value

    def check_unknown(self):
        unknown = sorted(str(k) for k in set(self.kwargs) - self.used)
        if unknown:
            raise NetworkLoadError(f'{self.what}: unknown TensorFlow kwarg(s) {_list_names(unknown)}; known: '
                                   f'{_list_names(sorted(self.used), 40)}. The pickle comes from a modified '
                                   f'StyleGAN2 code base that this converter does not support')


_ARCHITECTURES = ('orig', 'skip', 'resnet')


def _tf_kernel(reader):
    kernel = reader.get('resample_kernel', [1, 3, 3, 1])
    return None if kernel is None else list(kernel) if isinstance(kernel, (list, tuple)) else kernel


def _tf_generator_kwargs(static_kwargs, what):
    """PyTorch Generator kwargs for TF G static_kwargs (FORMATS.md section 3)."""
    r = _KwargReader(static_kwargs, what, ('truncation_psi', 'truncation_cutoff', 'style_mixing_prob', 'structure'))
    w_avg_beta = r.get('w_avg_beta', 0.995)
    kwargs = dict(
        z_dim=r.int('latent_size', 512),
        c_dim=r.int('label_size', 0),
        w_dim=r.int('dlatent_size', 512),
        img_resolution=r.int('resolution', 1024),
        img_channels=r.int('num_channels', 3),
        mapping_kwargs=dict(
            num_layers=r.int('mapping_layers', 8),
            embed_features=r.get('label_fmaps', None),
            layer_features=r.get('mapping_fmaps', None),
            activation=r.get('mapping_nonlinearity', 'lrelu'),
            lr_multiplier=r.get('mapping_lrmul', 0.01),
            w_avg_beta=1 if w_avg_beta is None else w_avg_beta,
        ),
        synthesis_kwargs=dict(
            channel_base=2 * r.int('fmap_base', 16384),
            channel_max=r.int('fmap_max', 512),
            num_fp16_res=r.int('num_fp16_res', 0),
            conv_clamp=r.get('conv_clamp', None),
            architecture=r.choice('architecture', 'skip', _ARCHITECTURES),
            resample_filter=_tf_kernel(r),
            use_noise=r.get('use_noise', True),
            activation=r.get('nonlinearity', 'lrelu'),
        ),
    )
    r.check_unknown()
    return kwargs


def _tf_discriminator_kwargs(static_kwargs, what):
    """PyTorch Discriminator kwargs for TF D static_kwargs (FORMATS.md section 3)."""
    r = _KwargReader(static_kwargs, what, ('structure',))
    activation = r.get('nonlinearity', 'lrelu')
    mapping_fmaps = r.get('mapping_fmaps', None)
    kwargs = dict(
        c_dim=r.int('label_size', 0),
        img_resolution=r.int('resolution', 1024),
        img_channels=r.int('num_channels', 3),
        architecture=r.choice('architecture', 'resnet', _ARCHITECTURES),
        channel_base=2 * r.int('fmap_base', 16384),
        channel_max=r.int('fmap_max', 512),
        num_fp16_res=r.int('num_fp16_res', 0),
        conv_clamp=r.get('conv_clamp', None),
        cmap_dim=mapping_fmaps,
        block_kwargs=dict(activation=activation, resample_filter=_tf_kernel(r),
                          freeze_layers=r.int('freeze_layers', 0)),
        mapping_kwargs=dict(num_layers=r.int('mapping_layers', 0), embed_features=mapping_fmaps,
                            layer_features=mapping_fmaps, activation=activation,
                            lr_multiplier=r.get('mapping_lrmul', 0.1)),
        epilogue_kwargs=dict(mbstd_group_size=r.get('mbstd_group_size', None),
                             mbstd_num_channels=r.int('mbstd_num_features', 1), activation=activation),
    )
    r.check_unknown()
    return kwargs


def _tf_net_state(net, what):
    """Checked state dict of a TFNetworkStub."""
    state = net.state if isinstance(net, TFNetworkStub) else None
    if not (isinstance(state, dict) and isinstance(state.get('static_kwargs'), dict)
            and isinstance(state.get('components', {}), dict) and isinstance(state.get('variables'), list)):
        raise NetworkLoadError(f'{what}: not a TensorFlow Network with static_kwargs, components and variables')
    if state.get('version') not in (4, 5):
        raise NetworkLoadError(f'{what}: TensorFlow Network state version {state.get("version")!r} is not '
                               f'supported (4 = StyleGAN2, 5 = StyleGAN2-ADA)')
    return state


def _tf_variables(net, what, prefix='', out=None, depth=0):
    """Every variable of a TF network and its components as name -> float32 tensor, components under 'key/'."""
    out = collections.OrderedDict() if out is None else out
    if depth > _MAX_DEPTH:
        raise NetworkLoadError(f'{what}: components nested more than {_MAX_DEPTH} deep')
    state = _tf_net_state(net, what)
    for item in state['variables']:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise NetworkLoadError(f'{what}: variables must be (name, value) pairs')
        vname, value = prefix + item[0], item[1]
        if not isinstance(value, (np.ndarray, np.generic)) or np.asarray(value).dtype != np.float32:
            raise NetworkLoadError(f'{what}: variable {vname} is {type(value).__name__} '
                                   f'{getattr(value, "dtype", "")}, expected float32 numpy data')
        if vname in out:
            raise NetworkLoadError(f'{what}: variable {vname} is stored twice')
        out[vname] = torch.from_numpy(np.array(value, dtype=np.float32))
    for key, comp in state.get('components', {}).items():
        if not isinstance(key, str):
            raise NetworkLoadError(f'{what}: component names must be strings')
        _tf_variables(comp, f'{what}/{key}', f'{prefix}{key}/', out, depth + 1)
    return out


def _tf_shape(t, ndim, vname, what, leading_ones=0):
    """Check a variable's rank (and that its first `leading_ones` axes have size 1)."""
    if t.ndim != ndim or any(s != 1 for s in t.shape[:leading_ones]):
        raise NetworkLoadError(f'{what}: variable {vname} has shape {list(t.shape)}, expected rank {ndim}'
                               + (f' with {leading_ones} leading axes of size 1' if leading_ones else ''))
    return t


def _tf_conv(t, vname, what, flip=False):
    """TF conv kernel [kh, kw, in, out] -> [out, in, kh, kw], optionally reversing both spatial axes first."""
    t = _tf_shape(t, 4, vname, what)
    return (t.flip(0, 1) if flip else t).permute(3, 2, 0, 1)


def _tf_dense(t, vname, what):
    """TF dense matrix [in, out] -> [out, in]."""
    return _tf_shape(t, 2, vname, what).t()


def _resolution(text, vname, what, min_res=4):
    """Block resolution from a '{r}x{r}' scope; must be a power of two >= min_res."""
    res = int(text)
    if res < min_res or res & (res - 1):
        raise NetworkLoadError(f'{what}: variable {vname} has an unexpected block resolution {res}')
    return res


def _tf_generator_tensors(tf_vars, version, kernel, what):
    """Map TF G/Gs variables to PyTorch Generator tensors (FORMATS.md section 3). Returns (tensors, kinds)."""
    tensors, kinds, unknown = collections.OrderedDict(), {}, []

    def put(name, t, kind='parameter'):
        tensors[name] = t.contiguous()
        kinds[name] = kind

    for vname, t in tf_vars.items():
        if vname == 'lod' and version == 4:
            continue
        if vname == 'dlatent_avg':
            put('mapping.w_avg', _tf_shape(t, 1, vname, what), 'buffer')
        elif m := re.fullmatch(r'mapping/(?:LabelEmbed|Dense(\d+))/(weight|bias)', vname):
            layer = 'embed' if m[1] is None else f'fc{int(m[1])}'
            put(f'mapping.{layer}.{m[2]}', _tf_dense(t, vname, what) if m[2] == 'weight' else t)
        elif m := re.fullmatch(r'synthesis/noise(\d+)', vname):
            # noise0 -> b4.conv1; noise(2*log2(r) - 5) -> b{r}.conv0; noise(2*log2(r) - 4) -> b{r}.conv1
            k = int(m[1])
            if k == 0:
                layer = 'b4.conv1'
            else:
                layer = f'b{2 ** ((k + 5) // 2)}.conv0' if k % 2 else f'b{2 ** ((k + 4) // 2)}.conv1'
            put(f'synthesis.{layer}.noise_const', _tf_shape(t, 4, vname, what, 2)[0, 0], 'buffer')
        elif vname == 'synthesis/4x4/Const/const':
            put('synthesis.b4.const', _tf_shape(t, 4, vname, what, 1)[0])
        elif m := re.fullmatch(r'synthesis/(\d+)x\1/(Conv|Conv0_up|Conv1|ToRGB)/(\w+)', vname):
            mapped = _tf_synthesis_layer(m, t, vname, what)
            if mapped is None:
                unknown.append(vname)
            else:
                put(*mapped)
        elif m := re.fullmatch(r'synthesis/(\d+)x\1/Skip/weight', vname):
            put(f'synthesis.b{_resolution(m[1], vname, what, 8)}.skip.weight', _tf_conv(t, vname, what, flip=True))
        else:
            unknown.append(vname)
    if unknown:
        raise NetworkLoadError(f'{what}: TensorFlow variable(s) with no PyTorch counterpart: {_list_names(unknown)} '
                               f'(progressive-growing or modified StyleGAN2 layouts are not supported)')
    _put_resample_filters(tensors, put, kernel, what)
    return tensors, kinds


_TF_LAYER_FIELDS = {'weight': 'weight', 'mod_weight': 'affine.weight', 'mod_bias': 'affine.bias',
                    'noise_strength': 'noise_strength', 'bias': 'bias'}


def _tf_synthesis_layer(m, t, vname, what):
    """(name, tensor) of a TF synthesis/<r>x<r>/<layer>/<field> variable (m: its regex match), None if unknown."""
    res = _resolution(m[1], vname, what)
    layer = {'Conv': 'conv1', 'Conv0_up': 'conv0', 'Conv1': 'conv1', 'ToRGB': 'torgb'}[m[2]]
    bad_res = (m[2] == 'Conv' and res != 4) or (m[2] in ('Conv0_up', 'Conv1') and res == 4)
    if bad_res or m[3] not in _TF_LAYER_FIELDS or (m[2] == 'ToRGB' and m[3] == 'noise_strength'):
        return None
    name = f'synthesis.b{res}.{layer}.{_TF_LAYER_FIELDS[m[3]]}'
    if m[3] == 'weight':
        return name, _tf_conv(t, vname, what, flip=(m[2] == 'Conv0_up'))
    if m[3] == 'mod_weight':
        return name, _tf_dense(t, vname, what)
    if m[3] == 'mod_bias':
        return name, _tf_shape(t, 1, vname, what) + 1
    if m[3] == 'noise_strength':
        return name, _tf_shape(t, 0, vname, what)
    return name, _tf_shape(t, 1, vname, what)


def _put_resample_filters(tensors, put, kernel, what):
    """The resample_kernel kwarg reaches the blocks and their up-sampling layers (conv0, skip); conv1 keeps the
    default filter, as in the stylegan2-ada-pytorch classes."""
    for path in sorted({m[1] for n in tensors if (m := re.match(r'(synthesis\.b\d+)\.', n))}):
        put(f'{path}.resample_filter', _resample_filter(kernel, what), 'buffer')
    for n in list(tensors):
        if m := re.fullmatch(r'(synthesis\.b\d+\.(conv0|conv1|skip))\.weight', n):
            put(f'{m[1]}.resample_filter', _resample_filter([1, 3, 3, 1] if m[2] == 'conv1' else kernel, what),
                'buffer')


def _tf_discriminator_tensors(tf_vars, kernel, freeze_layers, what):
    """Map TF D variables to PyTorch Discriminator tensors (FORMATS.md section 3). Returns (tensors, kinds)."""
    tensors, kinds, unknown = collections.OrderedDict(), {}, []
    conv_layers = {'FromRGB': ('fromrgb', 4), 'Conv0': ('conv0', 8), 'Conv1_down': ('conv1', 8),
                   'Skip': ('skip', 8), 'Conv': ('conv', 4)}
    for vname, t in tf_vars.items():
        if m := re.fullmatch(r'(\d+)x\1/(FromRGB|Conv0|Conv1_down|Skip|Conv|Dense0)/(weight|bias)', vname):
            layer, min_res = conv_layers.get(m[2], ('fc', 4))
            res = _resolution(m[1], vname, what, min_res)
            if (layer in ('conv', 'fc') and res != 4) or (layer == 'skip' and m[3] == 'bias'):
                unknown.append(vname)
                continue
            if m[3] == 'bias':
                t = _tf_shape(t, 1, vname, what)
            else:
                t = _tf_dense(t, vname, what) if layer == 'fc' else _tf_conv(t, vname, what)
            tensors[f'b{res}.{layer}.{m[3]}'] = t.contiguous()
        elif m := re.fullmatch(r'(?:(Output)|LabelEmbed|Mapping(\d+))/(weight|bias)', vname):
            layer = 'b4.out' if m[1] else 'mapping.embed' if m[2] is None else f'mapping.fc{int(m[2])}'
            t = _tf_dense(t, vname, what) if m[3] == 'weight' else _tf_shape(t, 1, vname, what)
            tensors[f'{layer}.{m[3]}'] = t.contiguous()
        else:
            unknown.append(vname)
    if unknown:
        raise NetworkLoadError(f'{what}: TensorFlow variable(s) with no PyTorch counterpart: {_list_names(unknown)} '
                               f'(progressive-growing or modified StyleGAN2 layouts are not supported)')
    kinds = {n: 'parameter' for n in tensors}
    # Freeze-D: the first `freeze_layers` layers, counted from the highest resolution, hold buffers.
    block_res = sorted({int(n[1:].split('.')[0]) for n in tensors if re.match(r'b\d+\.', n)}, reverse=True)
    layer_index = 0
    for res in block_res:
        if res == 4:
            continue
        for layer in ('fromrgb', 'conv0', 'conv1', 'skip'):
            names = [n for n in tensors if n.startswith(f'b{res}.{layer}.')]
            if names:
                for n in names:
                    kinds[n] = 'buffer' if layer_index < freeze_layers else 'parameter'
                layer_index += 1
    # The resample_kernel kwarg reaches the blocks and their down-sampling layers (conv1, skip); fromrgb, conv0
    # and the epilogue's conv keep the default filter, as in the stylegan2-ada-pytorch classes.
    for res in block_res:
        if res != 4:
            tensors[f'b{res}.resample_filter'] = _resample_filter(kernel, what)
            kinds[f'b{res}.resample_filter'] = 'buffer'
    for n in list(tensors):
        if m := re.fullmatch(r'(b\d+\.(fromrgb|conv0|conv1|skip|conv))\.weight', n):
            tensors[f'{m[1]}.resample_filter'] = _resample_filter(kernel if m[2] in ('conv1', 'skip') else [1, 3, 3, 1],
                                                                  what)
            kinds[f'{m[1]}.resample_filter'] = 'buffer'
    return tensors, kinds


def tf_to_states(networks, name='<tf pickle>'):
    """Convert a TF (G, D, Gs) tuple of TFNetworkStub objects to {'G', 'D', 'G_ema'} NetworkStates."""
    g_net, d_net, gs_net = networks
    states = {}
    for key, net, tf_name in (('G', g_net, 'G'), ('D', d_net, 'D'), ('G_ema', gs_net, 'Gs')):
        what = f'{name}: {tf_name}'
        state = _tf_net_state(net, what)
        tf_vars = _tf_variables(net, what)
        if key == 'D':
            kwargs = _tf_discriminator_kwargs(state['static_kwargs'], what)
            tensors, kinds = _tf_discriminator_tensors(tf_vars, kwargs['block_kwargs']['resample_filter'],
                                                       kwargs['block_kwargs']['freeze_layers'], what)
            states[key] = NetworkState('Discriminator', (), kwargs, tensors, kinds)
        else:
            kwargs = _tf_generator_kwargs(state['static_kwargs'], what)
            tensors, kinds = _tf_generator_tensors(tf_vars, state['version'],
                                                   kwargs['synthesis_kwargs']['resample_filter'], what)
            states[key] = NetworkState('Generator', (), kwargs, tensors, kinds)
    return states


# ----------------------------------------------------------------------------
# Reading files.

_TOP_CLASSES = {'G': 'Generator', 'D': 'Discriminator', 'G_ema': 'Generator'}


def read_network_pickle(path, name=None):
    """Read a network pickle without building modules.

    path: local file. name: how errors refer to it (default: the path).
    Returns {'G', 'D', 'G_ema': NetworkState or None, 'training_set_kwargs': dict or None, 'sha256': hex str}.
    """
    name = os.fspath(path) if name is None else name
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise NetworkLoadError(f'{name}: cannot read the file ({exc.strerror or exc}); check the path') from exc
    sha256 = hashlib.sha256(data).hexdigest()
    obj = restricted_unpickle(data, name)
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, TFNetworkStub) for n in obj):
        result = tf_to_states(obj, name)
        result['training_set_kwargs'] = None
    elif isinstance(obj, dict):
        result = {}
        for key, class_name in _TOP_CLASSES.items():
            record = obj.get(key)
            if record is not None and not (isinstance(record, PersistentRecord) and record.class_name == class_name):
                raise NetworkLoadError(f'{name}: {key} is {record!r}, expected a persistent {class_name}')
            result[key] = None if record is None else record_to_state(record, f'{name}: {key}')
        if all(result[key] is None for key in _TOP_CLASSES):
            raise NetworkLoadError(f'{name}: the pickle holds none of G, D, G_ema (keys: {_list_names(obj)})')
        kwargs = obj.get('training_set_kwargs')
        if kwargs is not None and not isinstance(kwargs, dict):
            raise NetworkLoadError(f'{name}: training_set_kwargs is {type(kwargs).__name__}, expected a dict')
        result['training_set_kwargs'] = kwargs
    else:
        raise NetworkLoadError(f'{name}: the pickle holds a {type(obj).__name__}; expected a dict with G, D, G_ema '
                               f'(PyTorch snapshot) or a (G, D, Gs) tuple (TensorFlow)')
    result['sha256'] = sha256
    return result


# ----------------------------------------------------------------------------
# Building modules.

_MISSING = object()


def _plain(value):
    """value with numpy scalars as Python numbers and tuples as lists; _MISSING if not a plain value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in 'biuf':
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _MISSING if any(v is _MISSING for v in items) else items
    return _MISSING


def _same(a, b):
    """Equality of two _plain values; numbers compare with a relative tolerance of 1e-6."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def _check_structure(module, state, name):
    """Stored submodule classes and plain attributes must match the module built from the stored arguments."""
    problems = []
    for path, class_name in state.submodules.items():
        try:
            sub = module.get_submodule(path)
        except AttributeError:
            problems.append(f'{path} ({class_name}) is missing')
            continue
        if type(sub).__name__ != class_name:
            problems.append(f'{path} is {type(sub).__name__}, stored as {class_name}')
    for path, attrs in state.attributes.items():
        try:
            sub = module.get_submodule(path)
        except AttributeError:
            continue
        for key, stored in attrs.items():
            stored, actual = _plain(stored), _plain(getattr(sub, key, _MISSING))
            if stored is not _MISSING and actual is not _MISSING and not _same(stored, actual):
                problems.append(f'{path or state.class_name}.{key} = {actual!r}, stored {stored!r}')
    if problems:
        raise NetworkLoadError(f'{name}: training.networks.{state.class_name} built from the stored arguments '
                               f'differs from the stored network: {_list_names(problems)}')


def _assign_tensors(module, state, name):
    """Copy every stored tensor into the module by dotted name; the name sets, shapes and dtypes must match."""
    targets = module.state_dict(keep_vars=True)
    only_file = [n for n in state.tensors if n not in targets]
    only_module = [n for n in targets if n not in state.tensors]
    if only_file or only_module:
        raise NetworkLoadError(f'{name}: tensors differ from training.networks.{state.class_name} built from the '
                               f'stored arguments; only in the file: {_list_names(only_file)}; only in the module: '
                               f'{_list_names(only_module)}')
    bad = [f'{n} stored {list(state.tensors[n].shape)} {state.tensors[n].dtype}, module {list(t.shape)} {t.dtype}'
           for n, t in targets.items() if state.tensors[n].shape != t.shape or state.tensors[n].dtype != t.dtype]
    if bad:
        raise NetworkLoadError(f'{name}: tensor shapes/dtypes differ from training.networks.{state.class_name}: '
                               f'{_list_names(bad)}')
    with torch.no_grad():
        for n, t in targets.items():
            t.copy_(state.tensors[n])


def build_network(state, name='<network>', device='cpu'):
    """Instantiate training.networks.<state.class_name> from a NetworkState and load its tensors strictly.

    The global torch RNG is left untouched. Returns the module in eval mode with requires_grad False, on `device`.
    """
    try:
        networks = importlib.import_module('training.networks')
    except ImportError as exc:
        raise NetworkLoadError(f'{name}: training.networks cannot be imported ({exc}); run from the project root, '
                               f'or use read_network_pickle() to get the tensors without modules') from exc
    if state.class_name not in ('Generator', 'Discriminator'):
        raise NetworkLoadError(f'{name}: only Generator and Discriminator are built, not {state.class_name}')
    cls = getattr(networks, state.class_name, None)
    if cls is None:
        raise NetworkLoadError(f'{name}: training.networks has no class {state.class_name}')
    with torch.random.fork_rng(devices=[]):
        try:
            module = cls(*state.init_args, **state.init_kwargs)
        except Exception as exc:
            raise NetworkLoadError(f'{name}: training.networks.{state.class_name} could not be built from the stored '
                                   f'arguments {state.init_args} {state.init_kwargs} ({type(exc).__name__}: '
                                   f'{_first_line(exc)})') from exc
    _check_structure(module, state, name)
    _assign_tensors(module, state, name)
    return module.eval().requires_grad_(False).to(device)


URL_SCHEME = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*://')  # a source that starts like this is a URL


def is_remote_source(source):
    """True when load_network would fetch `source` (a URL or a short name of NETWORK_URLS), not read a local file."""
    source = os.fspath(source) if isinstance(source, os.PathLike) else source
    return isinstance(source, str) and (source in NETWORK_URLS or URL_SCHEME.match(source) is not None)


def _resolve_source(source, cache_dir):
    """(local path, name for messages) for a path, URL or short name; downloads URLs through the cache."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise NetworkLoadError(f'load_network: source must be a path, URL or short name, not {type(source).__name__}')
    url = NETWORK_URLS.get(source)
    if url is None and URL_SCHEME.match(source):
        url = source
    if url is not None:
        try:
            path = open_url(url, cache_dir=cache_dir, return_filename=True)
        except (OSError, ValueError) as exc:  # the message names the URL already
            raise NetworkLoadError(str(exc) if str(exc).startswith(url) else f'{source}: {exc}') from exc
        return path, (source if path == source else f'{path} (from {source})')
    if os.path.isfile(source):
        return source, source
    if os.path.isdir(source):
        raise NetworkLoadError(f'{source}: is a directory, not a network pickle; give a .pkl file in it, e.g. a '
                               f'network-snapshot-*.pkl of a run folder')
    raise NetworkLoadError(f'{source}: no such file, and not a URL or a known short name. Accepted: a path to a .pkl '
                           f'file, an http(s):// or file:// URL, or one of: {", ".join(NETWORK_URLS)}')


def source_sha256(source, cache_dir=None):
    """sha256 hex digest of the bytes of network `source` (a path, URL or short name, as load_network takes)."""
    from dnnlib.util import file_sha256
    path, _ = _resolve_source(source, cache_dir)
    return file_sha256(path)


def load_network(source, device='cpu', cache_dir=None):
    """Load G, D and G_ema from a network pickle.

    source: local path, http(s)/file URL (cached, see dnnlib.util.open_url), or a short name from
        fsgan.network_urls.NETWORK_URLS (short names win over same-named local files; use './name' for those).
    Returns {'G', 'D', 'G_ema': torch.nn.Module or None (eval mode, requires_grad False, on `device`),
             'training_set_kwargs': dict or None, 'sha256': hex digest of the file bytes}.
    Raises NetworkLoadError for every failure, naming the file.
    """
    path, name = _resolve_source(source, cache_dir)
    states = read_network_pickle(path, name)
    result = {key: None if states[key] is None else build_network(states[key], f'{name}: {key}', device)
              for key in _TOP_CLASSES}
    result['training_set_kwargs'] = states['training_set_kwargs']
    result['sha256'] = states['sha256']
    return result
