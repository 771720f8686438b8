"""Project hygiene: the three dependency lists agree; the persistence format round-trips."""
import os
import pickle
import re

import numpy as np
import torch

from tests.conftest import ROOT


def _pins(text):
    return dict(re.findall(r'([A-Za-z0-9_.\-]+)==([0-9][^\s",]*)', text))


def test_dependency_pins_agree():
    read = lambda name: open(os.path.join(ROOT, name)).read()  # noqa: E731
    req = _pins(read('requirements.txt'))
    nodeps = _pins(read('requirements-nodeps.txt'))
    pyproject = _pins(read('pyproject.toml'))
    env = _pins(read('environment.yml'))
    assert req and nodeps
    assert req == env, 'environment.yml and requirements.txt differ'
    assert {**req, **nodeps} == pyproject, 'pyproject.toml and requirements*.txt differ'


def test_embedded_source_defines_compatible_classes(p1_path):
    """Executing the module source embedded in our snapshots rebuilds networks with identical outputs."""
    from fsgan import load_network
    from fsgan.export import baked_copy
    net = load_network(p1_path)
    G = baked_copy(net['G_ema'])
    meta = G.__reduce__()[1][0]
    assert meta['type'] == 'class' and meta['version'] == 6 and meta['class_name'] == 'Generator'
    namespace = {'__name__': 'embedded_networks'}
    exec(compile(meta['module_src'], '<embedded>', 'exec'), namespace)  # noqa: S102  (our own source)
    G2 = namespace['Generator'](*G.init_args, **G.init_kwargs)
    G2.load_state_dict(G.state_dict())
    G2.eval()
    z = torch.from_numpy(np.random.RandomState(0).randn(2, G.z_dim)).float()
    c = torch.zeros([2, 0])
    with torch.no_grad():
        assert torch.equal(G(z, c, noise_mode='const'), G2(z, c, noise_mode='const'))
    # And our own pickle round trip is bit-exact.
    G3 = pickle.loads(pickle.dumps(G))
    for (n1, t1), (n2, t2) in zip(G.state_dict().items(), G3.state_dict().items()):
        assert n1 == n2 and torch.equal(t1, t2)


def test_editable_install_makes_the_library_importable_anywhere(tmp_path):
    """`pip install -e .` (into a throwaway venv that sees this venv's packages) gives the five packages."""
    import site
    import subprocess
    import sys
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    py = str(venv / 'bin' / 'python')
    purelib = subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(purelib, 'outer_venv.pth'), 'w') as f:  # torch, pip, setuptools of the test's venv
        f.write('\n'.join(site.getsitepackages()) + '\n')
    subprocess.run([py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation', '--disable-pip-version-check',
                    '-e', ROOT], check=True, cwd=tmp_path, timeout=300)
    code = ('import dnnlib, torch_utils, training, fsgan, metrics, os; '
            'print(os.path.dirname(os.path.dirname(fsgan.__file__)))')
    out = subprocess.run([py, '-c', code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert os.path.samefile(out.stdout.strip(), ROOT)
