"""Weights: the bottom layer that every model file of swapbench goes through.

A method, metric backend or face detector declares the files it needs as `WeightFile`s (class
attribute `weights`), each with its format. The engine resolves every declared file before any work
starts, so a missing or corrupt file stops a run at once with a message that names the file, its
official URL and the path where it was expected; `load` then opens it the one way its format is
opened. Which classes use a file is derived from those declarations (`swapbench.bench.catalogue`).

Layers (enforced by the import contract in pyproject.toml, checked in CI), bottom to top:
registry -> datasets, weights -> faces -> methods, metrics -> bench -> leaderboard -> cli.
A module imports only from its own layer or below.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from swapbench.registry import Registry

WEIGHTS_ENV = "SWAPBENCH_WEIGHTS"

# How a file is opened (see `load`):
#   state_dict   torch.load(weights_only=True): tensors and plain containers only, never pickled objects
#   checkpoint   a training checkpoint (e.g. a Lightning .ckpt) that a method converts: opened and checked
#                like a state dict, handed over as a `Checkpoint` whose conversion is cached by sha256
#   safetensors  safetensors.torch.load_file
#   onnx         the path, checked to be an ONNX protobuf (sessions are made by their users, with providers)
#   torchscript  torch.jit.load (TorchScript code is not Python: nothing arbitrary runs)
#   mat          scipy.io.loadmat (MATLAB data: arrays only)
#   folder       a directory (diffusers model folder or Hugging Face Hub snapshot), returned as its path
#   pickled_module  a whole pickled nn.Module (torch.save(model)): unpickled with inert stand-ins for the
#                classes in `pickle_classes` only (weights.pickled), flattened to a state dict, cached as
#                safetensors by sha256
FORMATS = ("state_dict", "checkpoint", "safetensors", "onnx", "torchscript", "mat", "folder", "pickled_module")


@dataclass(frozen=True)
class Member:
    """A file that a method reads from a folder weight: its path in the folder, or alternatives in the order
    the loader tries them (diffusers reads safetensors before .bin), and the sha256 values published for
    the first path (any one of them; empty: none published; the alternatives are read unverified)."""

    paths: tuple[str, ...]
    sha256: tuple[str, ...] = ()
    optional: bool = False  # read when present (e.g. a release's replacement UNet)

    def find(self, folder: Path) -> Path | None:
        return next((Path(folder) / p for p in self.paths if (Path(folder) / p).is_file()), None)


@dataclass(frozen=True)
class WeightFile:
    """One model file (or folder) from an official release."""

    name: str  # registry key, e.g. "ghost/G_unet_2blocks"
    filename: str  # file (or folder) name on disk, e.g. "G_unet_2blocks.pth"
    # Official download location: a direct https:// link (release asset), "hf://owner/repo[@revision]/path"
    # for a file on the Hugging Face Hub, or the page to follow for files that need `manual`.
    url: str
    licence: str
    format: str = "state_dict"
    sha256: str | None = None  # None where the official release publishes no checksum; folders: see folder_sha256
    size: int | None = None  # bytes, where known
    note: str = ""  # e.g. "registration required"
    # The file sits behind a registration or licence form: `bench weights download` prints
    # instructions (url, note, destination) instead of fetching it.
    manual: bool = False
    # Folders: the files read from it. They are checked before any work, and a run records the hash of
    # these files alone (hash_of), so other files of a Hub snapshot neither cost hashing time nor change it.
    members: tuple[Member, ...] = ()
    # pickled_module: the "module.Class" names the file may name (its modules, containers, optimizer...);
    # each becomes an inert stand-in, never imported. torch's tensor rebuild functions need no entry.
    pickle_classes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"weight file {self.name!r}: unknown format {self.format!r}; known: {', '.join(FORMATS)}")


# Every declared file by name, filled from the classes that declare them (bench.catalogue) and by tests.
FILES: Registry[WeightFile] = Registry("weight file")


def register(*files: WeightFile) -> tuple[WeightFile, ...]:
    for f in files:
        FILES.add(f.name, f)
    return files


class WeightsError(RuntimeError):
    """A weight file is missing or does not match its checksum."""


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where weight files are looked for, in order: config/CLI, environment variable, cache directory."""
    dirs = []
    if weights_dir:
        dirs.append(Path(weights_dir).expanduser())
    if os.environ.get(WEIGHTS_ENV):
        dirs.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    dirs.append(Path(platformdirs.user_cache_dir("swapbench")) / "weights")
    return dirs


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file; of a folder, the sha256 of its sorted "relative path  file sha256" lines."""
    path = Path(path)
    if path.is_dir():
        return folder_sha256(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)  # multi-GB checkpoints are hashed once
    if key not in _SHA256_SEEN:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
        _SHA256_SEEN[key] = h.hexdigest()
    return _SHA256_SEEN[key]


_SHA256_SEEN: dict[tuple, str] = {}


def folder_sha256(path: Path, files=None) -> str:
    """sha256 of the sorted "relative path  file sha256" lines of `files` (default: every file of the folder
    but hidden ones)."""
    if files is None:
        files = (p for p in Path(path).rglob("*")
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    lines = sorted(f"{p.relative_to(path).as_posix()}  {sha256_of(p)}" for p in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def hash_of(f: WeightFile, path: Path) -> str:
    """The sha256 a run records: of the file; of a folder with declared members, of the sorted
    "relative path  sha256" lines of the members present (else of every file, as folder_sha256)."""
    if f.format != "folder" or not f.members:
        return sha256_of(path)
    return folder_sha256(path, [p for m in f.members if (p := m.find(path))])


def folder_problems(f: WeightFile, folder: Path, verify: bool = True) -> list[tuple[str, str]]:
    """(status, message) of each missing member of a folder weight ("incomplete") and of each member
    that does not match a published checksum ("checksum mismatch")."""
    problems = []
    for m in f.members:
        p = m.find(folder)
        if p is None:
            if not m.optional:
                problems.append(("incomplete", f"{folder} lacks {' or '.join(m.paths)} ({f.name}): get it from {f.url}"))
        elif verify and m.sha256 and p == Path(folder) / m.paths[0] and (actual := sha256_of(p)) not in m.sha256:
            problems.append(("checksum mismatch", f"{p} does not match its checksum: expected sha256 "
                             f"{' or '.join(m.sha256)}, got {actual}"))
    return problems


def locate(f: WeightFile, weights_dir=None) -> Path | None:
    for d in search_dirs(weights_dir):
        p = d / f.filename
        if p.is_dir() if f.format == "folder" else p.is_file():
            return p
    return None


def resolve(files, weights_dir=None) -> dict[str, Path]:
    """Map each file's registry name to its path; raise one error listing every missing or bad file."""
    from swapbench.weights import download, recorded

    found, problems = {}, []
    where = search_dirs(weights_dir)
    for f in files:
        p = locate(f, weights_dir)
        if p is None:
            problems.append(
                f"missing {f.filename} ({f.name}): download it from {f.url}"
                f" and put it in {where[0]} (searched: {', '.join(map(str, where))})"
                + (f"; {f.note}" if f.note else "")
                + ("" if download.source_kind(f) == "manual" else f"; or run `bench weights download {f.name}`")
            )
            continue
        if f.sha256 is not None:
            actual = sha256_of(p)
            if actual != f.sha256:
                problems.append(f"{p} does not match its checksum: expected sha256 {f.sha256}, got {actual}")
                continue
        if f.members and (bad := folder_problems(f, p)):
            problems.extend(message for _, message in bad)
            continue
        if changed := recorded.mismatch(f, p):  # no published checksum: the hash recorded at download
            problems.append(changed)
            continue
        found[f.name] = p
    if problems:
        raise WeightsError("weights not available:\n  " + "\n  ".join(problems))
    return found


@dataclass
class WeightStatus:
    file: WeightFile
    path: Path | None
    # "present" | "missing" | "checksum mismatch" | "present (unverified)" | "incomplete" (folders)
    # | "present (matches the sha256 recorded at download)" (weights.recorded)
    status: str
    sha256: str | None = field(default=None)


def status(f: WeightFile, weights_dir=None, verify: bool = True) -> WeightStatus:
    from swapbench.weights import recorded

    p = locate(f, weights_dir)
    if p is None:
        return WeightStatus(f, None, "missing")
    if verify and not recorded.pinned(f) and recorded.recall(p) and not (f.members and folder_problems(f, p)):
        changed = recorded.mismatch(f, p) is not None
        return WeightStatus(f, p, "checksum mismatch" if changed else "present (matches the sha256 recorded at download)",
                            hash_of(f, p))
    if f.members:
        bad = folder_problems(f, p, verify)
        if bad:
            kinds = {kind for kind, _ in bad}
            return WeightStatus(f, p, "checksum mismatch" if "checksum mismatch" in kinds else "incomplete")
        return WeightStatus(f, p, "present" if verify and any(m.sha256 and m.find(p) == p / m.paths[0] for m in f.members) else
                            "present (unverified)", hash_of(f, p) if verify else None)
    if f.sha256 is None or not verify:
        return WeightStatus(f, p, "present (unverified)")
    actual = sha256_of(p)
    return WeightStatus(f, p, "present" if actual == f.sha256 else "checksum mismatch", actual)


def load(f: WeightFile, path: str | os.PathLike):
    """Open a resolved file the one way its declared format is opened; WeightsError names the file.

    state_dict / checkpoint -> the dict torch.load returns with weights_only=True (a file carrying
    pickled Python objects is refused, never executed); safetensors -> dict of tensors;
    torchscript -> the ScriptModule in eval mode; onnx and folder -> the path; pickled_module -> the flat
    state dict of the pickled model (only the allow-listed classes, as inert stand-ins).
    """
    path = Path(path)
    where = f"{path} ({f.name})"
    if f.format == "folder":
        if not path.is_dir():
            raise WeightsError(f"{where} is not a folder: expected a diffusers model folder or a Hub snapshot")
        return path
    if not path.is_file():
        raise WeightsError(f"{where} does not exist; download it from {f.url}")
    if f.format == "pickled_module":
        return _load_pickled_module(f, path)
    if f.format == "checkpoint":
        # Opened by the method's load_weights (before any face work), converted once per file content.
        return Checkpoint(f, path)
    if f.format == "state_dict":
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise WeightsError(
                f"{where} was refused: it carries pickled Python objects, and swapbench only opens files of"
                f" plain tensors (loading it would run code from the file). Use the official file from {f.url}"
                f" (not a re-saved copy){_unsupported_global(exc)}") from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise WeightsError(f"{where} is not a readable PyTorch file ({_first_line(exc)});"
                               f" download it again from {f.url}") from None
        if not isinstance(state, dict):
            raise WeightsError(f"{where} holds a {type(state).__name__}, not a state dict; use the official file from {f.url}")
        return state
    if f.format == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{where} is not a readable safetensors file ({_first_line(exc)}); download it again from {f.url}") from None
    if f.format == "torchscript":
        import torch

        try:
            return torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError, OSError) as exc:
            raise WeightsError(f"{where} is not a readable TorchScript file ({_first_line(exc)}); download it again from {f.url}") from None
    if f.format == "mat":
        from scipy.io import loadmat

        try:
            return loadmat(str(path))
        except (ValueError, OSError, TypeError) as exc:
            raise WeightsError(f"{where} is not a readable MATLAB file ({_first_line(exc)}); download it again from {f.url}") from None
    if f.format == "onnx":
        with open(path, "rb") as fh:
            head = fh.read(64)
        # An ONNX model is a protobuf whose first field is ir_version (field 1, varint: byte 0x08).
        if not head.startswith(b"\x08"):
            raise WeightsError(f"{where} is not an ONNX model; download it again from {f.url}")
        return path
    raise WeightsError(f"{where}: no loader for format {f.format!r}")


def state_dict_problems(expected, state, finite: bool = False) -> list[str]:
    """What keeps `state` from loading strictly where `expected` (a module's state dict, or a
    {key: tensor-like} of the right shapes) goes: counts with examples of missing and unexpected keys,
    values that are not tensors, wrong shapes and, with `finite`, tensors holding NaN or infinities."""
    import torch

    missing = [k for k in expected if k not in state]
    unexpected = [str(k) for k in state if k not in expected]
    not_tensor = [k for k in expected if k in state and not isinstance(state[k], torch.Tensor)]
    shapes = [f"{k}: {tuple(state[k].shape)} instead of {tuple(v.shape)}" for k, v in expected.items()
              if k in state and k not in not_tensor and tuple(state[k].shape) != tuple(v.shape)]
    problems = [f"{len(v)} {label} (e.g. {', '.join(v[:3])})"
                for label, v in (("missing keys", missing), ("unexpected keys", unexpected),
                                 ("values that are not tensors", not_tensor), ("wrong shapes", shapes)) if v]
    if finite and not problems:
        # min and max propagate NaN and are 20x faster than isfinite().all() on 250M values
        bad = [k for k, v in state.items()
               if v.is_floating_point() and v.numel() and not torch.isfinite(torch.stack(torch.aminmax(v))).all()]
        if bad:
            problems.append(f"{len(bad)} tensors with NaN or infinite values (e.g. {', '.join(bad[:3])})")
    return problems


def check_fits(module, state: object, wf: WeightFile, what: str, finite: bool = False) -> None:
    """Raise a WeightsError naming the file and its URL unless `state` loads strictly into `module`
    (what: the part it is meant for, e.g. "MegaFS HieRFE encoder ('e')")."""
    from collections.abc import Mapping

    if not isinstance(state, Mapping):
        raise WeightsError(f"{wf.filename} ({wf.name}): {what} is not a state dict but a {type(state).__name__}."
                           f" Get the official file from {wf.url}")
    problems = state_dict_problems(module.state_dict(), state, finite=finite)
    if problems:
        raise WeightsError(f"{wf.filename} ({wf.name}) does not fit the {what}: {'; '.join(problems)}."
                           f" Get the official file from {wf.url}")


def strip_prefix(state: dict, prefix: str = "module.") -> dict:
    """A state dict without the prefix every key carries (nn.DataParallel saves keys as "module.<key>")."""
    if state and all(str(k).startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Checkpoint:
    """An opened training checkpoint: `state()` is its dict (loaded once, weights_only), `converted(tag,
    convert)` the method's conversion of it, computed once per file content and cached as safetensors."""

    def __init__(self, f: WeightFile, path: Path):
        self.file, self.path = f, Path(path)
        self._state = None

    def state(self) -> dict:
        if self._state is None:
            self._state = load(WeightFile(**{**self.file.__dict__, "format": "state_dict"}), self.path)
        return self._state

    def converted(self, tag: str, convert) -> dict:
        """convert(state dict) -> dict of tensors, cached under the file's sha256 and `tag`."""
        result = cached_conversion(self.path, sha256_of(self.path), tag, lambda _: convert(self.state()))
        self._state = None  # the raw checkpoint is not needed any more
        return result


def _unsupported_global(exc: BaseException) -> str:
    """The Python object torch refused to unpickle, from its message (never its advice)."""
    for line in str(exc).splitlines():
        if "Unsupported global" in line or "GLOBAL" in line:
            return f"; it names {line.split(':', 1)[-1].strip()}"
    return ""


def _load_pickled_module(f: WeightFile, path: Path) -> dict:
    from swapbench.weights import pickled

    where = f"{path} ({f.name})"

    def convert(p):
        try:
            return pickled.state_dict(p, f.pickle_classes)
        except pickle.UnpicklingError as exc:
            raise WeightsError(
                f"{where} was refused: {pickled.refusal(exc)}; nothing of the file was run."
                f" Use the official file from {f.url}") from None
        except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
            raise WeightsError(f"{where} is not a readable pickled model ({_first_line(exc)});"
                               f" download it again from {f.url}") from None

    return cached_conversion(path, sha256_of(path), pickled.conversion_tag(f.pickle_classes), convert)


CONVERTED_DIR = "converted"


def cached_conversion(path: str | os.PathLike, sha256: str, tag: str, convert) -> dict:
    """convert(path) -> dict of tensors, computed once per source file and cached as safetensors.

    The cache file is keyed by the source's sha256 and a tag naming the conversion (bump the tag when
    the conversion changes), so an official checkpoint (LDM, EMA, `module.` prefixes) is converted once.
    """
    from safetensors.torch import load_file, save_file

    cache = Path(platformdirs.user_cache_dir("swapbench")) / CONVERTED_DIR / f"{tag}-{sha256[:32]}.safetensors"
    if cache.is_file():
        return load_file(str(cache))
    tensors = {k: v.contiguous() for k, v in convert(Path(path)).items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"source_sha256": sha256, "conversion": tag})
    os.replace(tmp, cache)
    return tensors
