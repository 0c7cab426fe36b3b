"""Whole pickled models (a `torch.save(model)` file), opened without running any of their code.

Some releases ship a pickled `nn.Module` instead of a state dict (SimSwap's `arcface_checkpoint.tar`,
in two layouts: foamliu's 2020 training dict `{'model': DataParallel(ResNet), 'optimizer': SGD, ...}`
and the 2023 bare ResNet). Plain unpickling would import and run the file's classes. Here the unpickler
finds only the globals of torch's weights_only allow-list (so tensors are rebuilt only by torch's own
rebuild functions) and the names on the weight file's allow-list (`WeightFile.pickle_classes`,
"module.Class"), each as an inert `StandIn` that only keeps the state the pickle gives it. Any other
name (e.g. `os.system`) stops the load before it is imported, and the error names it. The stand-ins
are then walked (`_parameters`, persistent `_buffers`, `_modules`) into the flat {key: tensor} state
dict that `module.state_dict()` would have given.

Written here because torch offers neither part for these files: `torch.load(weights_only=True)` takes
stand-ins for the zip format but refuses the legacy format's pickled module classes, and nothing
flattens an unpickled module without its code.
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import pickle
import re
import types
from pathlib import Path

WRAPPERS = ("DataParallel", "DistributedDataParallel")  # modules that hold the model as `.module`


class StandIn:
    """An inert object for an allow-listed class: keeps the state the pickle gives it as attributes,
    and the arguments it was made with; it has no method that the unpickler could call."""

    def __init__(self, *args):
        self.args = args


def _items_only(*args) -> dict:
    """A defaultdict (an optimizer's state) as a plain dict of its items; its default factory is dropped.
    torch's unpickler fills only plain dicts, so a stand-in class cannot stand for a mapping."""
    return {}


MAPPINGS = {"collections.defaultdict": _items_only}


def stand_ins(names) -> list[tuple[object, str]]:
    """(stand-in, "module.Class") pairs for torch.serialization.safe_globals, one inert class per name."""
    pairs = []
    for full in names:
        module, _, qualname = full.rpartition(".")
        if not module:
            raise ValueError(f"pickle class {full!r} must be 'module.Class'")
        inert = MAPPINGS.get(full) or type(qualname, (StandIn,), {"__module__": module, "__qualname__": qualname})
        pairs.append((inert, full))
    return pairs


def refusal(exc: BaseException) -> str:
    """What torch's restricted unpickler refused, from its message (never its advice to unpickle freely)."""
    named = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if named:
        return f"it names {named.group(1)}, which is not among the classes declared for it (pickle_classes)"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line and i + 1 < len(lines):
            return f"the restricted unpickler stopped at: {lines[i + 1]}"
    return f"the restricted unpickler stopped at: {lines[0] if lines else type(exc).__name__}"


def restricted_pickle(classes) -> types.SimpleNamespace:
    """A pickle module for torch.load whose unpickler finds only torch's weights_only globals (tensor
    rebuild functions, storages, dtypes, OrderedDict...) and the stand-ins of `classes`; any other name
    raises pickle.UnpicklingError naming it, before anything of it is imported or called."""
    from torch._weights_only_unpickler import _get_allowed_globals

    allowed = {name: inert for inert, name in stand_ins(classes)} | _get_allowed_globals()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            # torch.save writes protocol 2, which names Python 2 modules (__builtin__.set): map them as
            # pickle's own find_class does
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            full = f"{module}.{name}"
            if full not in allowed:
                raise pickle.UnpicklingError(f"Unsupported global: GLOBAL {full}")
            return allowed[full]

    def load(file, **kwargs):
        return Unpickler(file, **kwargs).load()

    return types.SimpleNamespace(__name__=__name__, Unpickler=Unpickler, load=load)


def unpickle(path: str | Path, classes) -> object:
    """The object of a torch.save file, zip or legacy serialization, with `classes` as stand-ins.

    torch's weights_only unpickler refuses the legacy format's pickled module classes (torch < 1.6,
    e.g. SimSwap's 2020 ArcFace file), so torch.load gets the restricted pickle module above instead:
    torch still reads the storages and rebuilds the tensors, the module decides every name.
    Raises pickle.UnpicklingError naming the first name outside the allow-list."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy format's "source code of class changed" warnings
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle(classes))


def module_root(obj):
    """The model in a loaded file: the object itself, or a training dict's 'model', unwrapped from
    (Distributed)DataParallel."""
    if isinstance(obj, dict) and "model" in obj:
        obj = obj["model"]
    while type(obj).__name__ in WRAPPERS and isinstance(obj, StandIn):
        obj = vars(obj)["_modules"]["module"]
    return obj


def flatten(module, prefix: str = "") -> dict:
    """module.state_dict() of an unpickled module stand-in: parameters, persistent buffers, submodules."""
    import torch

    if not isinstance(module, StandIn) or "_modules" not in vars(module):
        raise ValueError(f"{prefix or 'the file'} is a {type(module).__name__}, not a pickled nn.Module")
    state = vars(module)
    skip = state.get("_non_persistent_buffers_set") or set()
    out = {}
    for kind in ("_parameters", "_buffers"):
        for name, value in (state.get(kind) or {}).items():
            if value is None or (kind == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value.detach()
    for name, child in state["_modules"].items():
        if child is not None:
            out.update(flatten(child, f"{prefix}{name}."))
    return out


def state_dict(path: str | Path, classes) -> dict:
    """The flat state dict of the model pickled in `path` (see the module docstring)."""
    return flatten(module_root(unpickle(path, classes)))


def conversion_tag(classes) -> str:
    """Cache tag of a conversion: a changed allow-list converts (and checks) the file again."""
    return "pickled_module-" + hashlib.sha256("\n".join(sorted(classes)).encode()).hexdigest()[:12]

