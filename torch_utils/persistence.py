"""Pickle format of network objects, compatible with stylegan2-ada-pytorch.

A class decorated with `@persistent_class` records its constructor arguments and pickles as
a call of `torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` holds
type='class', version=6, module_src (the text of the module that defines the class),
class_name and state (the instance __dict__, including `_init_args` / `_init_kwargs`).
stylegan2-ada-pytorch reads such files by executing module_src; this project never does:
its loader (fsgan.loading) rebuilds objects from class_name, init kwargs and tensors, and
`_reconstruct_persistent_obj` here looks the class up by name among the registered classes: a plain
pickle.load of a network file needs the module that defines its classes (training.networks) imported
first, as for any pickled class; fsgan.load_network needs nothing of this module.
"""
import copy
import inspect
import sys

FORMAT_VERSION = 6

_registry = {}       # class_name -> decorated class
_module_src = {}     # module name -> source text


def _source_of_module(module_name):
    """Text of the module that defines a persistent class (read once)."""
    if module_name not in _module_src:
        _module_src[module_name] = inspect.getsource(sys.modules[module_name])
    return _module_src[module_name]


def persistent_class(orig_class):
    """Class decorator: record init args and pickle in the persistent format."""
    assert isinstance(orig_class, type)
    module_name = orig_class.__module__
    class_name = orig_class.__name__

    class Decorator(orig_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return copy.deepcopy(self._init_kwargs)

        def __reduce__(self):
            if type(self) is not Decorator:  # e.g. a dynamically re-parameterised subclass
                return super().__reduce__()
            meta = dict(type='class', version=FORMAT_VERSION, module_src=_source_of_module(module_name),
                        class_name=class_name, state=dict(self.__dict__))
            return _reconstruct_persistent_obj, (meta,)

    Decorator.__name__ = class_name
    Decorator.__qualname__ = class_name
    Decorator.__module__ = module_name
    Decorator.__doc__ = orig_class.__doc__
    _registry.setdefault(class_name, Decorator)  # first definition wins (e.g. over re-executed copies)
    return Decorator


def _reconstruct_persistent_obj(meta):
    """Unpickling hook: rebuild an object from its meta dict, by class name (source is never run)."""
    if meta.get('type') != 'class':
        raise ValueError(f'Unsupported persistent object type: {meta.get("type")!r}')
    class_name = meta['class_name']
    if class_name not in _registry:
        raise ValueError(f'Unknown persistent class {class_name!r}: import the module that defines it '
                         '(training.networks) before unpickling, or load the file with fsgan.load_network')
    cls = _registry[class_name]
    obj = cls.__new__(cls)
    if hasattr(obj, '__setstate__'):
        obj.__setstate__(meta['state'])
    else:
        obj.__dict__.update(meta['state'])
    return obj
