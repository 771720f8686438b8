"""fsgan.loading: bit-exact tensors from the fixture pickles, forward passes against the npz files, refusal of
hostile or damaged pickles, and TF / PyTorch-format round trips through pickles crafted here."""

import collections
import copy
import functools
import hashlib
import importlib
import json
import math
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from dnnlib.util import EasyDict
from fsgan.loading import (NetworkLoadError, PersistentRecord, load_network, read_network_pickle,
                           record_to_state, restricted_unpickle)
from fsgan.network_urls import NETWORK_URLS

FIX = Path(__file__).parent / 'fixtures'
FIXTURES = ['p1', 'p2', 't1']
FILE_SHA256 = {  # from tests/fixtures/FORMATS.md
    'p1': 'c4efb28f7c1d5478a253ca24cbc799eff7b4d10f5aa41ca4c87a7c8c9b8e020c',
    'p2': '615956fb2a67158109ef902a263433f96b4db89c1d9cb0671bfa13f54414e60a',
    't1': '865e50c83ba950dc6464f708e0e865e26dd821a9fb3c461dcf668435921ec321',
}


@functools.lru_cache(maxsize=None)
def _read(fixture):
    return read_network_pickle(FIX / f'{fixture}.pkl')


@functools.lru_cache(maxsize=None)
def _meta(fixture):
    with open(FIX / f'{fixture}_kwargs.json') as f:
        return json.load(f)


def _table(fixture):
    meta = _meta(fixture)
    return meta.get('tensors') or meta['converted_pytorch_tensors']


def _networks_module():
    """The training.networks module (imported here so a broken import fails the test that needs it)."""
    return importlib.import_module('training.networks')


# ----------------------------------------------------------------------------
# Fixture pickles: stored tensors and kwargs, without building networks.

@pytest.mark.parametrize('fixture', FIXTURES)
@pytest.mark.parametrize('key', ['G', 'D', 'G_ema'])
def test_tensors_match_kwargs_table(fixture, key):
    state = _read(fixture)[key]
    table = _table(fixture)[key]
    assert set(state.tensors) == {row['name'] for row in table}
    for row in table:
        t = state.tensors[row['name']]
        where = f'{fixture} {key} {row["name"]}'
        assert list(t.shape) == row['shape'], where
        assert t.dtype == getattr(torch, row['dtype']), where
        assert state.kinds[row['name']] == row['kind'], where
        assert t.double().sum().item() == pytest.approx(row['sum'], rel=1e-12, abs=1e-12), where
        assert t.double().abs().sum().item() == pytest.approx(row['sum_abs'], rel=1e-12, abs=1e-12), where


@pytest.mark.parametrize('fixture', FIXTURES)
def test_kwargs_and_metadata(fixture):
    res, meta = _read(fixture), _meta(fixture)
    assert res['sha256'] == FILE_SHA256[fixture]
    assert res['G'].class_name == res['G_ema'].class_name == 'Generator'
    assert res['D'].class_name == 'Discriminator'
    if fixture.startswith('t'):
        assert res['G'].init_kwargs == meta['equivalent_pytorch_G_kwargs']
        assert res['G_ema'].init_kwargs == meta['equivalent_pytorch_G_kwargs']
        assert res['D'].init_kwargs == meta['equivalent_pytorch_D_kwargs']
        assert res['training_set_kwargs'] is None
    else:
        assert res['G'].init_kwargs == meta['G_init_kwargs_in_pickle']
        assert res['D'].init_kwargs == meta['D_init_kwargs_in_pickle']
        assert isinstance(res['G'].init_kwargs['mapping_kwargs'], EasyDict)
        assert res['training_set_kwargs'] == meta['training_set_kwargs']
        assert res['G'].submodules['synthesis.b4.conv1'] == 'SynthesisLayer'
        assert res['G'].attributes['']['num_ws'] == meta['derived']['num_ws']
    assert res['G'].init_args == ()


# ----------------------------------------------------------------------------
# Networks built from the fixtures reproduce the npz outputs.

def _outputs(res, ref):
    """The fixture outputs on the CPU in float32 (the self-check computes the same keys on a device)."""
    from fsgan.selfcheck_sections import fixture_outputs
    return fixture_outputs(res, ref, 'cpu')


def _check_outputs(out, ref, what):
    for key, value in out.items():
        tol = 1e-5 if key.startswith('ws_') else 1e-4
        expected = torch.from_numpy(ref[key])
        assert value.shape == expected.shape, f'{what} {key}'
        diff = (value - expected).abs().max().item()
        assert diff <= tol, f'{what} {key}: max abs diff {diff:.3g} > {tol}'


@pytest.mark.parametrize('fixture', FIXTURES)
def test_load_network_forward_matches_npz(fixture):
    _networks_module()
    rng = torch.random.get_rng_state()
    res = load_network(str(FIX / f'{fixture}.pkl'))
    assert torch.equal(torch.random.get_rng_state(), rng)  # building the networks leaves the RNG alone
    assert res['sha256'] == FILE_SHA256[fixture]
    stored = _read(fixture)
    for key in ('G', 'D', 'G_ema'):
        module = res[key]
        assert not module.training and not any(p.requires_grad for p in module.parameters())
        sd = module.state_dict()
        assert set(sd) == set(stored[key].tensors)
        for name, t in sd.items():
            assert torch.equal(t, stored[key].tensors[name]), f'{fixture} {key} {name}'
    ref = np.load(FIX / f'{fixture}.npz')
    _check_outputs(_outputs(res, ref), ref, fixture)


# ----------------------------------------------------------------------------
# Hostile pickles are refused before they run anything.

def _op_str(text):
    data = text.encode()
    return b'\x8c' + bytes([len(data)]) + data  # SHORT_BINUNICODE


def _op_global(module, name):
    return _op_str(module) + _op_str(name) + b'\x93'  # STACK_GLOBAL


def _call_pickle(module, name, arg_ops):
    """Protocol-4 pickle of module.name(*args); arg_ops push exactly one argument."""
    return b'\x80\x04' + _op_global(module, name) + arg_ops + b'\x85R.'  # TUPLE1, REDUCE, STOP


class _Reduce:
    """Pickles as func(*args)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _assert_refused(path, marker, refused):
    with pytest.raises(NetworkLoadError) as info:
        read_network_pickle(path)
    msg = str(info.value)
    assert str(path) in msg and f'refused global {refused}' in msg and '\n' not in msg
    assert not marker.exists()


def test_eval_payload_is_live_and_refused(tmp_path):
    marker = tmp_path / 'eval-ran'
    payload = _call_pickle('builtins', 'eval', _op_str(f'open({str(marker)!r}, "w").write("x")'))
    pickle.loads(payload)  # positive control: an ordinary unpickler runs it
    assert marker.exists()
    marker.unlink()
    _assert_refused(_write(tmp_path, 'eval.pkl', payload), marker, 'builtins.eval')
    with pytest.raises(NetworkLoadError, match='refused global builtins.eval'):
        load_network(str(tmp_path / 'eval.pkl'))
    assert not marker.exists()


def test_os_system_payload_is_live_and_refused(tmp_path):
    marker = tmp_path / 'system-ran'
    payload = pickle.dumps(_Reduce(os.system, f'touch {marker}'))
    pickle.loads(payload)  # positive control
    assert marker.exists()
    marker.unlink()
    _assert_refused(_write(tmp_path, 'system.pkl', payload), marker, f'{os.system.__module__}.system')


def test_subprocess_payload_hidden_in_snapshot_is_refused(tmp_path):
    marker = tmp_path / 'popen-ran'
    snapshot = {'training_set_kwargs': {'path': 'x'}, 'G': None,
                'D': _Reduce(subprocess.Popen, ['touch', str(marker)])}
    path = _write(tmp_path, 'snap.pkl', pickle.dumps(snapshot, protocol=3))
    _assert_refused(path, marker, 'subprocess.Popen')


@pytest.mark.parametrize('module,name', [
    ('builtins', 'getattr'), ('builtins', 'exec'), ('posix', 'system'), ('os', 'system'),
    ('torch', 'load'), ('numpy', 'load'), ('dnnlib.util', 'open_url'), ('torch_utils.persistence', 'persistent_class'),
    ('torch._utils', '_rebuild_tensor_v2.__globals__'),  # dotted attribute walk
    ('collections', 'OrderedDict.fromkeys'), ('builtins', 'set.__init__'),
])
def test_other_globals_refused(tmp_path, module, name):
    path = _write(tmp_path, 'g.pkl', _call_pickle(module, name, _op_str('x')))
    with pytest.raises(NetworkLoadError, match=f'refused global {module}.{name}'.replace('.', r'\.')):
        read_network_pickle(path)


def test_hostile_storage_payload_refused(tmp_path):
    marker = tmp_path / 'storage-ran'
    inner = pickle.dumps(_Reduce(os.system, f'touch {marker}'), protocol=2)
    arg = b'B' + len(inner).to_bytes(4, 'little') + inner  # BINBYTES
    path = _write(tmp_path, 's.pkl', _call_pickle('torch.storage', '_load_from_bytes', arg))
    with pytest.raises(NetworkLoadError, match='torch.load'):
        read_network_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize('target', ['dnnlib.util\nEasyDict', 'torch._utils\n_rebuild_parameter'])
def test_a_pickle_that_changes_an_allowed_global_is_refused_and_undone(tmp_path, p1_path, target):
    """BUILD aimed at an allowed class or function itself (not at an instance it made) would set attributes on it
    for the whole process: here EasyDict.lr = 1000.0 (or an attribute of a checked rebuild function), ahead of a
    genuine network pickle."""
    from dnnlib.util import EasyDict
    from fsgan import loading
    good = open(p1_path, 'rb').read()
    build = b'N}X\x02\x00\x00\x00lrG@\x8f@\x00\x00\x00\x00\x00s\x86b0'  # (None, {'lr': 1000.0}) BUILD POP
    path = _write(tmp_path, 'tampered.pkl', good[:2] + b'c' + target.encode() + b'\n' + build + good[2:])
    with pytest.raises(NetworkLoadError, match='tries to change .*refused'):
        read_network_pickle(path)
    assert EasyDict(lr=0.002).lr == 0.002 and 'lr' not in vars(EasyDict)
    assert not hasattr(loading._rebuild_parameter, 'lr')
    assert read_network_pickle(p1_path) is not None                 # the genuine file still loads


def test_object_arrays_refused(tmp_path):
    path = _write(tmp_path, 'obj.pkl', pickle.dumps(np.array([1, None], dtype=object), protocol=3))
    with pytest.raises(NetworkLoadError, match='numpy dtype'):
        read_network_pickle(path)


def test_numeric_arrays_and_scalars_allowed():
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.asfortranarray(np.ones((2, 3), np.int64)),
              np.zeros((0, 4), np.float16), np.array(True)]
    out = restricted_unpickle(pickle.dumps((arrays, np.float64(0.25), np.int32(-3)), protocol=3))
    for a, b in zip(out[0], arrays):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert out[1] == 0.25 and type(out[1]) is np.float64 and out[2] == -3


# ----------------------------------------------------------------------------
# Damaged or foreign files.

@pytest.mark.parametrize('content,expect', [
    (b'', 'file is empty'),
    (b'hello, world\n', 'not a network pickle'),
    (b'PK\x03\x04rest-of-a-zip', 'zip archive'),
    (b'<!DOCTYPE html><html>quota exceeded</html>', 'HTML'),
    (b'\x80\x04\x95', 'truncated or corrupt'),
])
def test_bad_files(tmp_path, content, expect):
    path = _write(tmp_path, 'bad.pkl', content)
    with pytest.raises(NetworkLoadError) as info:
        load_network(str(path))
    assert str(path) in str(info.value) and expect in str(info.value) and '\n' not in str(info.value)


@pytest.mark.parametrize('fixture', ['p1', 't1'])
@pytest.mark.parametrize('fraction', [0.001, 0.5, 0.999])
def test_truncated_fixture(tmp_path, fixture, fraction):
    data = (FIX / f'{fixture}.pkl').read_bytes()
    path = _write(tmp_path, f'{fixture}-cut.pkl', data[:int(len(data) * fraction)])
    with pytest.raises(NetworkLoadError) as info:
        read_network_pickle(path)
    assert str(path) in str(info.value) and '\n' not in str(info.value)


def test_wrong_top_level_objects(tmp_path):
    with pytest.raises(NetworkLoadError, match='holds a list'):
        read_network_pickle(_write(tmp_path, 'a.pkl', pickle.dumps([1, 2])))
    with pytest.raises(NetworkLoadError, match='none of G, D, G_ema'):
        read_network_pickle(_write(tmp_path, 'b.pkl', pickle.dumps({'G': None, 'other': 1})))
    with pytest.raises(NetworkLoadError, match='G is 3'):
        read_network_pickle(_write(tmp_path, 'c.pkl', pickle.dumps({'G': 3})))


def test_unknown_source_lists_what_is_accepted(tmp_path):
    for source in ['ffhq9999', str(tmp_path / 'missing.pkl')]:
        with pytest.raises(NetworkLoadError) as info:
            load_network(source)
        msg = str(info.value)
        assert source in msg and 'http(s)://' in msg and 'ffhq256' in msg and 'stylegan2-ffhq-config-f' in msg


def test_short_name_table():
    for name in ['ffhq256', 'ffhq512', 'ffhq1024', 'celebahq256', 'lsundog256', 'metfaces', 'afhqcat', 'afhqdog',
                 'afhqwild', 'brecahad', 'cifar10', 'ffhq', 'stylegan2-ffhq-config-f', 'stylegan2-church-config-f',
                 'stylegan2-car-config-f', 'stylegan2-cat-config-f', 'stylegan2-horse-config-f']:
        assert NETWORK_URLS[name].startswith('https://nvlabs-fi-cdn.nvidia.com/stylegan2')
        assert NETWORK_URLS[name].endswith('.pkl')


def test_download_error_becomes_network_load_error(tmp_path):
    with pytest.raises(NetworkLoadError, match='missing.pkl'):
        load_network((tmp_path / 'missing.pkl').as_uri())


# ----------------------------------------------------------------------------
# TensorFlow pickles crafted here from a known PyTorch state (inverse of FORMATS.md section 3).

def _filter(kernel):
    f = np.asarray(kernel, np.float64)
    return torch.from_numpy((np.outer(f, f) / f.sum() ** 2).astype(np.float32))


def _g_layout(kw):
    """PyTorch Generator tensors for resolved kwargs kw: name -> (shape, kind, resample kernel or None)."""
    m, s = kw['mapping_kwargs'], kw['synthesis_kwargs']
    w, C, R, kernel = kw['w_dim'], kw['img_channels'], kw['img_resolution'], s['resample_filter']
    out = {}

    def add(name, shape, kind='parameter', filter_kernel=None):
        out[name] = (shape, kind, filter_kernel)

    def add_filter(name, filter_kernel):
        add(name, [len(filter_kernel)] * 2, 'buffer', filter_kernel)

    emb = (m['embed_features'] or w) if kw['c_dim'] else 0
    feats = [kw['z_dim'] + emb] + [m['layer_features'] or w] * (m['num_layers'] - 1) + [w]
    add('mapping.w_avg', [w], 'buffer')
    if kw['c_dim']:
        add('mapping.embed.weight', [emb, kw['c_dim']])
        add('mapping.embed.bias', [emb])
    for i in range(m['num_layers']):
        add(f'mapping.fc{i}.weight', [feats[i + 1], feats[i]])
        add(f'mapping.fc{i}.bias', [feats[i + 1]])
    ch = lambda r: min(s['channel_base'] // r, s['channel_max'])

    def modulated(p, cin, cout, ksize):
        add(p + '.weight', [cout, cin, ksize, ksize])
        add(p + '.bias', [cout])
        add(p + '.affine.weight', [cin, w])
        add(p + '.affine.bias', [cin])

    r = 4
    while r <= R:
        p = f'synthesis.b{r}'
        add_filter(p + '.resample_filter', kernel)
        if r == 4:
            add(p + '.const', [ch(4), 4, 4])
        layers = [('conv1', ch(r))] if r == 4 else [('conv0', ch(r // 2)), ('conv1', ch(r))]
        for name, cin in layers:
            modulated(f'{p}.{name}', cin, ch(r), 3)
            # Only the up-sampling conv0 gets the kwarg's filter; conv1 keeps the default.
            add_filter(f'{p}.{name}.resample_filter', kernel if name == 'conv0' else [1, 3, 3, 1])
            if s['use_noise']:
                add(f'{p}.{name}.noise_strength', [])
                add(f'{p}.{name}.noise_const', [r, r], 'buffer')
        if r == R or s['architecture'] == 'skip':
            modulated(p + '.torgb', ch(r), C, 1)
        if r > 4 and s['architecture'] == 'resnet':
            add(p + '.skip.weight', [ch(r), ch(r // 2), 1, 1])
            add_filter(p + '.skip.resample_filter', kernel)
        r *= 2
    return out


def _d_layout(kw):
    """PyTorch Discriminator tensors for resolved kwargs kw: name -> (shape, kind, resample kernel or None)."""
    b, m, e = kw['block_kwargs'], kw['mapping_kwargs'], kw['epilogue_kwargs']
    R, C, arch, kernel = kw['img_resolution'], kw['img_channels'], kw['architecture'], b['resample_filter']
    ch = lambda r: min(kw['channel_base'] // r, kw['channel_max'])
    cmap = (kw['cmap_dim'] or ch(4)) if kw['c_dim'] else 0
    out, layer_idx = {}, 0

    def conv(p, cin, cout, ksize, bias=True, trainable=True, filter_kernel=(1, 3, 3, 1)):
        kind = 'parameter' if trainable else 'buffer'
        out[p + '.weight'] = ([cout, cin, ksize, ksize], kind, None)
        if bias:
            out[p + '.bias'] = ([cout], kind, None)
        out[p + '.resample_filter'] = ([len(filter_kernel)] * 2, 'buffer', list(filter_kernel))

    r = R
    while r >= 8:
        p = f'b{r}'
        out[p + '.resample_filter'] = ([len(kernel)] * 2, 'buffer', kernel)
        layers = []  # (name, in, out, kernel size, bias, filter): only the down-sampling layers get the kwarg's filter
        if r == R or arch == 'skip':
            layers.append(('fromrgb', C, ch(r), 1, True, (1, 3, 3, 1)))
        layers += [('conv0', ch(r), ch(r), 3, True, (1, 3, 3, 1)), ('conv1', ch(r), ch(r // 2), 3, True, kernel)]
        if arch == 'resnet':
            layers.append(('skip', ch(r), ch(r // 2), 1, False, kernel))
        for name, cin, cout, ksize, bias, filter_kernel in layers:
            conv(f'{p}.{name}', cin, cout, ksize, bias, layer_idx >= b['freeze_layers'], filter_kernel)
            layer_idx += 1
        r //= 2
    if arch == 'skip':
        conv('b4.fromrgb', C, ch(4), 1)
    conv('b4.conv', ch(4) + e['mbstd_num_channels'], ch(4), 3)
    fc = {'b4.fc': [ch(4), ch(4) * 16], 'b4.out': [cmap or 1, ch(4)]}
    if kw['c_dim']:
        emb = m['embed_features'] or cmap
        fc['mapping.embed'] = [emb, kw['c_dim']]
        feats = [emb] + [m['layer_features'] or cmap] * (m['num_layers'] - 1) + [cmap]
        fc.update({f'mapping.fc{i}': [feats[i + 1], feats[i]] for i in range(m['num_layers'])})
    for p, shape in fc.items():
        out[p + '.weight'] = (shape, 'parameter', None)
        out[p + '.bias'] = (shape[:1], 'parameter', None)
    return out


def _random_state(layout, seed):
    """Random float32 tensors for a layout; affine biases in [0.6, 1.9] so that TF's mod_bias = b - 1 is exact."""
    gen = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict()
    for name, (shape, kind, filter_kernel) in layout.items():
        if filter_kernel is not None:
            sd[name] = _filter(filter_kernel)
        elif name.endswith('affine.bias'):
            sd[name] = (1 + 0.3 * torch.randn(shape, generator=gen)).clamp(0.6, 1.9)
        else:
            sd[name] = torch.randn(shape, generator=gen)
    return sd


def _tf_from_generator(sd, with_lod):
    """(own, synthesis, mapping) TF variable lists for a PyTorch Generator state."""
    own, synthesis, mapping = [], [], []
    if with_lod:
        own.append(('lod', np.float32(0)))
    for name, t in sd.items():
        a, parts = t.numpy(), name.split('.')
        if name == 'mapping.w_avg':
            own.append(('dlatent_avg', a))
        elif parts[0] == 'mapping':
            scope = 'LabelEmbed' if parts[1] == 'embed' else 'Dense' + parts[1][2:]
            mapping.append((f'{scope}/{parts[2]}', a.T.copy() if parts[2] == 'weight' else a))
        elif parts[-1] == 'resample_filter':
            continue
        elif parts[-1] == 'const':
            synthesis.append(('4x4/Const/const', a[None]))
        else:
            r, layer, field = int(parts[1][1:]), parts[2], '.'.join(parts[3:])
            if field == 'noise_const':
                k = 0 if r == 4 else 2 * int(math.log2(r)) - (5 if layer == 'conv0' else 4)
                synthesis.append((f'noise{k}', a[None, None]))
                continue
            scope = {'conv0': 'Conv0_up', 'conv1': 'Conv' if r == 4 else 'Conv1', 'torgb': 'ToRGB',
                     'skip': 'Skip'}[layer]
            if field == 'weight':
                value = a.transpose(2, 3, 1, 0)
                value = value[::-1, ::-1] if layer in ('conv0', 'skip') else value
            elif field == 'affine.weight':
                value = a.T
            elif field == 'affine.bias':
                value = a - np.float32(1)
            elif field == 'noise_strength':
                value = np.float32(a)
            else:
                value = a
            tf_field = {'affine.weight': 'mod_weight', 'affine.bias': 'mod_bias'}.get(field, field)
            synthesis.append((f'{r}x{r}/{scope}/{tf_field}', np.ascontiguousarray(value) if value.ndim else value))
    return own, synthesis, mapping


def _tf_from_discriminator(sd):
    out = []
    scopes = {'fromrgb': 'FromRGB', 'conv0': 'Conv0', 'conv1': 'Conv1_down', 'skip': 'Skip', 'conv': 'Conv',
              'fc': 'Dense0'}
    for name, t in sd.items():
        a, parts = t.numpy(), name.split('.')
        if parts[-1] == 'resample_filter':
            continue
        if parts[0] == 'mapping':
            scope = 'LabelEmbed' if parts[1] == 'embed' else 'Mapping' + parts[1][2:]
        elif parts[1] == 'out':
            scope = 'Output'
        else:
            r = int(parts[0][1:])
            scope = f'{r}x{r}/{scopes[parts[1]]}'
        dense = parts[0] == 'mapping' or parts[1] in ('fc', 'out')
        if parts[-1] == 'weight':
            a = np.ascontiguousarray(a.T if dense else a.transpose(2, 3, 1, 0))
        out.append((f'{scope}/{parts[-1]}', a))
    return out


class _TFNetwork:
    """Test-side object that pickles under the TF class's name, dnnlib.tflib.network.Network."""


_TFNetwork.__module__, _TFNetwork.__qualname__, _TFNetwork.__name__ = 'dnnlib.tflib.network', 'Network', 'Network'


def _tf_net(version, name, static_kwargs, variables, components=None, func='G_main'):
    net = _TFNetwork()
    net.__dict__.update(version=version, name=name, static_kwargs=dict(static_kwargs),
                        components=components or {}, build_module_src='# test', build_func_name=func,
                        variables=list(variables))
    if version == 5:
        net.__dict__.update(input_shapes=[[None, 8]], output_shapes=[[None, 3, 8, 8]], input_names=['x'],
                            output_names=['y'])
    return net


@pytest.fixture
def tf_module(monkeypatch):
    """Register dnnlib.tflib.network so that pickle can name _TFNetwork."""
    package, module = types.ModuleType('dnnlib.tflib'), types.ModuleType('dnnlib.tflib.network')
    module.Network = _TFNetwork
    monkeypatch.setitem(sys.modules, 'dnnlib.tflib', package)
    monkeypatch.setitem(sys.modules, 'dnnlib.tflib.network', module)


def _tf_generator_net(version, name, static, sd, with_lod=None, rename=None):
    """TF G/Gs Network for a PyTorch Generator state; rename maps TF variable names to replacements."""
    own, synthesis, mapping = _tf_from_generator(sd, version == 4 if with_lod is None else with_lod)
    synthesis, mapping = ([((rename or {}).get(f'{prefix}/{n}', f'{prefix}/{n}').split('/', 1)[1], v) for n, v in vs]
                          for prefix, vs in (('synthesis', synthesis), ('mapping', mapping)))
    comps = {'synthesis': _tf_net(version, 'G_synthesis', static, synthesis, func='G_synthesis_stylegan2'),
             'mapping': _tf_net(version, 'G_mapping', dict(static, dlatent_broadcast=8), mapping, func='G_mapping')}
    return _tf_net(version, name, static, own, comps)


def _tf_pickle(version, g_static, d_static, g_sd, gs_sd, d_sd):
    g, gs = (_tf_generator_net(version, name, g_static, sd) for name, sd in (('G', g_sd), ('Gs', gs_sd)))
    d = _tf_net(version, 'D', d_static, _tf_from_discriminator(d_sd), func='D_stylegan2')
    return pickle.dumps((g, d, gs), protocol=3)


def _mk_g(z, c, w, res, ch, mapping, synthesis):
    return dict(z_dim=z, c_dim=c, w_dim=w, img_resolution=res, img_channels=ch, mapping_kwargs=mapping,
                synthesis_kwargs=synthesis)


# Each case: version, G static_kwargs, D static_kwargs, expected PyTorch G kwargs, expected PyTorch D kwargs.
TF_CASES = {
    'ada-v5-gray-resnet-cond-freezeD': (
        5,
        dict(num_channels=1, resolution=16, label_size=3, fmap_base=64, fmap_max=32, latent_size=24,
             dlatent_size=16, mapping_layers=2, mapping_fmaps=20, architecture='resnet', num_fp16_res=1,
             conv_clamp=256, truncation_psi=0.5, style_mixing_prob=0.9),
        dict(num_channels=1, resolution=16, label_size=3, fmap_base=64, fmap_max=32, architecture='skip',
             mapping_layers=1, mapping_fmaps=16, mbstd_group_size=2, mbstd_num_features=2, freeze_layers=2,
             num_fp16_res=1, conv_clamp=256),
        _mk_g(24, 3, 16, 16, 1,
              dict(num_layers=2, embed_features=None, layer_features=20, activation='lrelu', lr_multiplier=0.01,
                   w_avg_beta=0.995),
              dict(channel_base=128, channel_max=32, num_fp16_res=1, conv_clamp=256, architecture='resnet',
                   resample_filter=[1, 3, 3, 1], use_noise=True, activation='lrelu')),
        dict(c_dim=3, img_resolution=16, img_channels=1, architecture='skip', channel_base=128, channel_max=32,
             num_fp16_res=1, conv_clamp=256, cmap_dim=16,
             block_kwargs=dict(activation='lrelu', resample_filter=[1, 3, 3, 1], freeze_layers=2),
             mapping_kwargs=dict(num_layers=1, embed_features=16, layer_features=16, activation='lrelu',
                                 lr_multiplier=0.1),
             epilogue_kwargs=dict(mbstd_group_size=2, mbstd_num_channels=2, activation='lrelu')),
    ),
    'v4-orig-nonoise-kernel121': (
        4,
        dict(num_channels=3, resolution=16, fmap_base=32, fmap_max=16, latent_size=8, dlatent_size=8,
             mapping_layers=1, architecture='orig', use_noise=False, w_avg_beta=None, resample_kernel=[1, 2, 1],
             mapping_lrmul=0.5),
        dict(num_channels=3, resolution=16, fmap_base=32, fmap_max=16, architecture='orig', mbstd_num_features=0,
             resample_kernel=[1, 2, 1], structure='auto'),
        _mk_g(8, 0, 8, 16, 3,
              dict(num_layers=1, embed_features=None, layer_features=None, activation='lrelu', lr_multiplier=0.5,
                   w_avg_beta=1),
              dict(channel_base=64, channel_max=16, num_fp16_res=0, conv_clamp=None, architecture='orig',
                   resample_filter=[1, 2, 1], use_noise=False, activation='lrelu')),
        dict(c_dim=0, img_resolution=16, img_channels=3, architecture='orig', channel_base=64, channel_max=16,
             num_fp16_res=0, conv_clamp=None, cmap_dim=None,
             block_kwargs=dict(activation='lrelu', resample_filter=[1, 2, 1], freeze_layers=0),
             mapping_kwargs=dict(num_layers=0, embed_features=None, layer_features=None, activation='lrelu',
                                 lr_multiplier=0.1),
             epilogue_kwargs=dict(mbstd_group_size=None, mbstd_num_channels=0, activation='lrelu')),
    ),
    'v4-skip-cond-embed-only': (
        4,
        dict(num_channels=3, resolution=8, label_size=2, fmap_base=64, fmap_max=32, latent_size=16, dlatent_size=16,
             label_fmaps=8, mapping_layers=3),
        dict(num_channels=3, resolution=8, label_size=2, fmap_base=64, fmap_max=32),
        _mk_g(16, 2, 16, 8, 3,
              dict(num_layers=3, embed_features=8, layer_features=None, activation='lrelu', lr_multiplier=0.01,
                   w_avg_beta=0.995),
              dict(channel_base=128, channel_max=32, num_fp16_res=0, conv_clamp=None, architecture='skip',
                   resample_filter=[1, 3, 3, 1], use_noise=True, activation='lrelu')),
        dict(c_dim=2, img_resolution=8, img_channels=3, architecture='resnet', channel_base=128, channel_max=32,
             num_fp16_res=0, conv_clamp=None, cmap_dim=None,
             block_kwargs=dict(activation='lrelu', resample_filter=[1, 3, 3, 1], freeze_layers=0),
             mapping_kwargs=dict(num_layers=0, embed_features=None, layer_features=None, activation='lrelu',
                                 lr_multiplier=0.1),
             epilogue_kwargs=dict(mbstd_group_size=None, mbstd_num_channels=1, activation='lrelu')),
    ),
}


def _tf_case(case):
    version, g_static, d_static, g_kw, d_kw = TF_CASES[case]
    g_layout, d_layout = _g_layout(g_kw), _d_layout(d_kw)
    g_sd, gs_sd, d_sd = _random_state(g_layout, 1), _random_state(g_layout, 2), _random_state(d_layout, 3)
    data = _tf_pickle(version, g_static, d_static, g_sd, gs_sd, d_sd)
    return data, {'G': (g_kw, g_layout, g_sd), 'G_ema': (g_kw, g_layout, gs_sd), 'D': (d_kw, d_layout, d_sd)}


@pytest.mark.parametrize('case', list(TF_CASES))
def test_tf_round_trip(tf_module, tmp_path, case):
    data, expected = _tf_case(case)
    assert data[:2] == b'\x80\x03'
    res = read_network_pickle(_write(tmp_path, 'tf.pkl', data))
    for key, (kwargs, layout, sd) in expected.items():
        state = res[key]
        assert state.init_kwargs == kwargs, key
        assert set(state.tensors) == set(layout), (key, set(state.tensors) ^ set(layout))
        for name, (shape, kind, _) in layout.items():
            assert state.kinds[name] == kind, (key, name)
            assert state.tensors[name].dtype == torch.float32 and list(state.tensors[name].shape) == shape
            assert torch.equal(state.tensors[name], sd[name]), (key, name)


@pytest.mark.parametrize('case', list(TF_CASES))
def test_tf_round_trip_networks(tf_module, tmp_path, case):
    networks = _networks_module()
    data, expected = _tf_case(case)
    # The test-side layout agrees with training.networks ...
    for key, (kwargs, layout, sd) in expected.items():
        module = (networks.Discriminator if key == 'D' else networks.Generator)(**copy.deepcopy(kwargs))
        buffers = {n for n, _ in module.named_buffers()}
        fresh = module.state_dict()
        assert {n: (list(t.shape), 'buffer' if n in buffers else 'parameter')
                for n, t in fresh.items()} == {n: v[:2] for n, v in layout.items()}, key
        for name in fresh:
            if name.endswith('resample_filter'):
                assert torch.equal(fresh[name], sd[name]), (key, name)
    # ... and load_network fills the modules bit-exactly.
    res = load_network(str(_write(tmp_path, 'tf.pkl', data)))
    for key, (_, _, sd) in expected.items():
        got = res[key].state_dict()
        assert set(got) == set(sd)
        for name, t in sd.items():
            assert torch.equal(got[name], t), (key, name)


def test_tf_errors(tf_module, tmp_path):
    _, g_static, d_static, g_kw, d_kw = TF_CASES['v4-skip-cond-embed-only']
    g_sd, d_sd = _random_state(_g_layout(g_kw), 1), _random_state(_d_layout(d_kw), 3)

    def attempt(match, version=4, g_kwargs=g_static, d_kwargs=d_static, **g_options):
        g = _tf_generator_net(version, 'G', g_kwargs, g_sd, **g_options)
        d = _tf_net(version, 'D', d_kwargs, _tf_from_discriminator(d_sd), func='D_stylegan2')
        path = _write(tmp_path, 'bad-tf.pkl', pickle.dumps((g, d, g), protocol=3))
        with pytest.raises(NetworkLoadError, match=match) as info:
            read_network_pickle(path)
        assert str(path) in str(info.value)

    attempt(r'G: unknown TensorFlow kwarg\(s\) fancy_option', g_kwargs=dict(g_static, fancy_option=1))
    attempt(r'D: unknown TensorFlow kwarg\(s\) truncation_psi', d_kwargs=dict(d_static, truncation_psi=0.5))
    attempt('version 3 is not supported', version=3)
    attempt("architecture='fancy' must be one of", g_kwargs=dict(g_static, architecture='fancy'))
    # Original StyleGAN2 conditioning (LabelConcat) has no PyTorch counterpart.
    attempt('no PyTorch counterpart: mapping/LabelConcat/weight',
            rename={'mapping/LabelEmbed/weight': 'mapping/LabelConcat/weight'})
    # Progressive-growing layouts are not supported.
    attempt('no PyTorch counterpart: synthesis/8x8/ToRGB_lod0/weight',
            rename={'synthesis/8x8/ToRGB/weight': 'synthesis/8x8/ToRGB_lod0/weight'})
    # lod is ignored only in version-4 files.
    attempt('no PyTorch counterpart: lod', version=5, with_lod=True)


# ----------------------------------------------------------------------------
# PyTorch-format pickles crafted here: 2021-style record trees (OrderedDict containers, fewer torch hook keys,
# pickle protocol 3), an AugmentPipe record, Freeze-D buffers, and records that do not match the networks.

def _fake_reconstruct(meta):
    raise AssertionError('only pickled by name, never called')


_fake_reconstruct.__module__ = 'torch_utils.persistence'
_fake_reconstruct.__name__ = _fake_reconstruct.__qualname__ = '_reconstruct_persistent_obj'


@pytest.fixture
def persistence_module(monkeypatch):
    """Register torch_utils.persistence._reconstruct_persistent_obj as _fake_reconstruct for pickling."""
    module = types.ModuleType('torch_utils.persistence')
    module._reconstruct_persistent_obj = _fake_reconstruct
    monkeypatch.setitem(sys.modules, 'torch_utils.persistence', module)


_OLD_HOOK_KEYS = ['_backward_hooks', '_forward_hooks', '_forward_pre_hooks', '_state_dict_hooks',
                  '_load_state_dict_pre_hooks']


def _old_style(record, edit=None, path=''):
    """Rebuild a PersistentRecord as a torch-1.7-era persistent object; edit(path, state) may change the state."""
    st = record.state
    state = {'training': st['training'], '_parameters': collections.OrderedDict(st['_parameters']),
             '_buffers': collections.OrderedDict(st['_buffers']), '_non_persistent_buffers_set': set()}
    state.update({k: collections.OrderedDict() for k in _OLD_HOOK_KEYS})
    state['_modules'] = collections.OrderedDict(
        (k, None if v is None else _old_style(v, edit, f'{path}{k}.')) for k, v in st['_modules'].items())
    state.update({k: v for k, v in st.items() if not k.startswith('_') and k != 'training'})
    state['_init_args'], state['_init_kwargs'] = st['_init_args'], st['_init_kwargs']
    if edit is not None:
        edit(path.rstrip('.'), state)
    meta = {'type': 'class', 'version': 6, 'module_src': '# test', 'class_name': record.class_name, 'state': state}
    return _Reduce(_fake_reconstruct, meta)


@functools.lru_cache(maxsize=None)
def _p1_records():
    return restricted_unpickle((FIX / 'p1.pkl').read_bytes())


def _augment_pipe():
    state = {'training': False, '_parameters': collections.OrderedDict(),
             '_buffers': collections.OrderedDict(p=torch.zeros([]), Hz_geom=torch.ones(12)),
             '_modules': collections.OrderedDict(), 'xflip': 1.0, '_init_args': (), '_init_kwargs': {'xflip': 1}}
    meta = {'type': 'class', 'version': 6, 'module_src': '# test', 'class_name': 'AugmentPipe', 'state': state}
    return _Reduce(_fake_reconstruct, meta)


def _p1_snapshot(edits=None):
    """Protocol-3 snapshot bytes of p1's networks in the old layout; edits: key -> edit(path, state)."""
    records = _p1_records()
    snap = {'training_set_kwargs': EasyDict(records['training_set_kwargs'])}
    for key in ('G', 'D', 'G_ema'):
        snap[key] = _old_style(records[key], (edits or {}).get(key))
    snap['augment_pipe'] = _augment_pipe()
    return pickle.dumps(snap, protocol=3)


def _move_to_buffers(layer):
    """Edit that stores `layer`'s weight and bias as buffers, as Freeze-D does."""
    def edit(path, state):
        if path == layer:
            for name in ('weight', 'bias'):
                state['_buffers'][name] = state['_parameters'].pop(name).detach().clone()
    return edit


def test_old_style_record_tree(persistence_module, tmp_path):
    data = _p1_snapshot()
    assert data[:2] == b'\x80\x03' and b'builtins\nset' in data and b'collections\nOrderedDict' in data
    res = read_network_pickle(_write(tmp_path, 'old.pkl', data))
    ref = _read('p1')
    assert res['training_set_kwargs'] == ref['training_set_kwargs']
    for key in ('G', 'D', 'G_ema'):
        got, want = res[key], ref[key]
        assert (got.class_name, got.init_args, got.init_kwargs) == (want.class_name, want.init_args, want.init_kwargs)
        assert list(got.tensors) == list(want.tensors) and got.kinds == want.kinds
        assert got.submodules == want.submodules
        assert all(torch.equal(got.tensors[n], want.tensors[n]) for n in want.tensors)


def test_freeze_d_buffers_keep_names(persistence_module, tmp_path):
    data = _p1_snapshot({'D': _move_to_buffers('b32.fromrgb')})
    res = read_network_pickle(_write(tmp_path, 'freeze.pkl', data))
    assert set(res['D'].tensors) == set(_read('p1')['D'].tensors)
    assert res['D'].kinds['b32.fromrgb.weight'] == res['D'].kinds['b32.fromrgb.bias'] == 'buffer'
    assert res['D'].kinds['b32.conv0.weight'] == 'parameter'


def test_record_to_state_direct():
    leaf = PersistentRecord('FullyConnectedLayer', {
        '_parameters': collections.OrderedDict(weight=torch.ones(2, 3), bias=None),
        '_buffers': {'extra': torch.zeros(1), 'scratch': torch.zeros(1)}, '_non_persistent_buffers_set': {'scratch'},
        '_modules': {}, 'activation': 'linear', '_init_args': (3, 2), '_init_kwargs': {}})
    top = PersistentRecord('Generator', {'_parameters': {}, '_buffers': {}, '_modules': {'fc': leaf, 'off': None},
                                         'z_dim': 3, '_init_args': [], '_init_kwargs': {'z_dim': 3}})
    state = record_to_state(top)
    assert (state.class_name, state.init_args, state.init_kwargs) == ('Generator', (), {'z_dim': 3})
    assert list(state.tensors) == ['fc.weight', 'fc.extra'] and state.kinds['fc.extra'] == 'buffer'
    assert state.submodules == {'fc': 'FullyConnectedLayer'}
    assert state.attributes == {'': {'z_dim': 3}, 'fc': {'activation': 'linear'}}
    with pytest.raises(NetworkLoadError, match='_init_args'):
        record_to_state(PersistentRecord('Generator', {'_parameters': {}}))
    bad = PersistentRecord('Generator', {'_modules': {'fc': 'not a record'}, '_init_args': (), '_init_kwargs': {}})
    with pytest.raises(NetworkLoadError, match="submodule 'fc'"):
        record_to_state(bad)


def test_load_old_style_with_augment_pipe_and_freeze_d(persistence_module, tmp_path):
    _networks_module()
    data = _p1_snapshot({'D': _move_to_buffers('b32.fromrgb')})
    res = load_network(str(_write(tmp_path, 'old.pkl', data)))
    assert set(res) == {'G', 'D', 'G_ema', 'training_set_kwargs', 'sha256'}
    assert res['sha256'] == hashlib.sha256(data).hexdigest()
    ref = np.load(FIX / 'p1.npz')
    z, c = torch.from_numpy(ref['z']), torch.from_numpy(ref['c'])
    with torch.no_grad():
        out = {'img_psi1': res['G_ema'](z, c, noise_mode='const', force_fp32=True),
               'd_logits': res['D'](torch.from_numpy(ref['img_psi1']), c, force_fp32=True)}
    _check_outputs(out, ref, 'p1 (old-style, Freeze-D buffers)')


def _drop_tensor(layer, name):
    def edit(path, state):
        if path == layer:
            state['_parameters'].pop(name)
    return edit


def _add_buffer(layer, name, tensor):
    def edit(path, state):
        if path == layer:
            state['_buffers'][name] = tensor
    return edit


def _set_attr(layer, name, value):
    def edit(path, state):
        if path == layer:
            state[name] = value
    return edit


def _reshape(layer, name):
    def edit(path, state):
        if path == layer:
            state['_parameters'][name] = torch.nn.Parameter(state['_parameters'][name][:-1].clone(), False)
    return edit


@pytest.mark.parametrize('key,edit,match', [
    ('G_ema', _drop_tensor('synthesis.b8.conv0', 'noise_strength'),
     r'only in the file: \(none\); only in the module: synthesis\.b8\.conv0\.noise_strength'),
    ('D', _add_buffer('b16.conv1', 'stray', torch.zeros(3)), r'only in the file: b16\.conv1\.stray;'),
    ('G', _reshape('mapping.fc1', 'bias'), r'mapping\.fc1\.bias stored \[63\]'),
    ('G', _set_attr('synthesis.b16', 'architecture', 'resnet'), r"synthesis\.b16\.architecture = 'skip', stored"),
])
def test_strict_mismatches(persistence_module, tmp_path, key, edit, match):
    _networks_module()
    path = _write(tmp_path, 'edited.pkl', _p1_snapshot({key: edit}))
    with pytest.raises(NetworkLoadError, match=match) as info:
        load_network(str(path))
    assert str(path) in str(info.value) and f': {key}:' in str(info.value)


def test_own_snapshot_round_trip(tmp_path):
    networks = _networks_module()
    meta = _meta('p2')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = networks.Generator(**copy.deepcopy(meta['G_kwargs_passed'])).eval().requires_grad_(False)
        D = networks.Discriminator(**copy.deepcopy(meta['D_kwargs_passed'])).eval().requires_grad_(False)
    snap = {'training_set_kwargs': dict(meta['training_set_kwargs']), 'G': G, 'D': D, 'G_ema': copy.deepcopy(G),
            'augment_pipe': None}
    path = _write(tmp_path, 'own.pkl', pickle.dumps(snap))
    res = load_network(str(path))
    for key in ('G', 'D', 'G_ema'):
        want = snap[key].state_dict()
        got = res[key].state_dict()
        assert set(got) == set(want) and all(torch.equal(got[n], want[n]) for n in want), key
    assert res['training_set_kwargs'] == meta['training_set_kwargs']


def test_load_network_from_url_and_short_name(tmp_path, monkeypatch):
    _networks_module()
    monkeypatch.setenv('FSGAN_CACHE_DIR', str(tmp_path / 'cache'))
    res = load_network((FIX / 't1.pkl').as_uri())
    assert res['sha256'] == FILE_SHA256['t1'] and res['G_ema'] is not None
    monkeypatch.setitem(NETWORK_URLS, 'fixture-t1', (FIX / 't1.pkl').as_uri())
    res = load_network('fixture-t1', cache_dir=tmp_path / 'c2')
    assert res['sha256'] == FILE_SHA256['t1']


def test_plain_unpickling_needs_the_network_classes_and_load_network_does_not(tmp_path):
    """torch_utils.persistence imports nothing above it: a plain pickle.load of an NVIDIA snapshot in a fresh
    process is refused with what to do until training.networks is imported; fsgan.load_network needs neither."""
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'p1.pkl')
    code = ('import pickle, sys\n'
            'data = open(sys.argv[1], "rb").read()\n'
            'try:\n'
            '    pickle.loads(data)\n'
            'except ValueError as e:\n'
            '    print("refused:", e)\n'
            'print("training imported:", "training" in sys.modules)\n'
            'import training.networks\n'
            'print("loaded:", type(pickle.loads(data)["G_ema"]).__name__)\n')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, '-c', code, fixture], cwd=root, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("refused: Unknown persistent class")
    assert 'training.networks' in lines[0] and 'fsgan.load_network' in lines[0]
    assert lines[1:] == ['training imported: False', 'loaded: Generator']
