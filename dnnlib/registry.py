"""One shape for every registry of the project (methods, loss terms, augmentations, metrics, callbacks).

A registry maps a name to a spec: any object with a `name` and, for kinds that take options, an `options` dict
{option: default}. Each module that adds a kind calls `register` once at import (one registration line).
"""


class Registry(dict):
    """name -> spec, in registration order (the order in which, e.g., loss terms are summed).

    kind: what is registered, as error messages name it ('adaptation method'); label: how an option error starts
    ('Method'), by default the kind with a capital letter.
    """

    def __init__(self, kind, label=None):
        super().__init__()
        self.kind = kind
        self.label = label or kind[:1].upper() + kind[1:]

    def register(self, spec):
        """Add spec under spec.name (a name registered twice is a programming error). Returns spec."""
        assert spec.name not in self, f'{self.kind} {spec.name!r} registered twice'
        self[spec.name] = spec
        return spec

    def lookup(self, name):
        """The spec of `name`; ValueError listing the registered names when there is none."""
        if name not in self:
            raise ValueError(f'Unknown {self.kind} {name!r}; choose one of: {", ".join(sorted(self))}')
        return self[name]

    def with_defaults(self, name, options):
        """{**spec.options, **options} for `name`; ValueError naming the unknown options and the known ones."""
        spec = self.lookup(name)
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            raise ValueError(f'{self.label} {name!r} has no option(s) {", ".join(unknown)}; '
                             f'its options are: {", ".join(sorted(spec.options)) or "none"}')
        return {**spec.options, **options}
