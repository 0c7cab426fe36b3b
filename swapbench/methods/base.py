"""The swap interface every method implements.

The engine detects, aligns and crops faces once per crop convention, so every method sees identical
inputs; a method only maps aligned source/target crops to aligned swapped crops. Methods never read
files or download anything: the engine resolves the weight files a method declares, opens each the
way its declared format is opened (swapbench.weights.load) and hands them over through `load_weights`,
all before the first face is detected.

Declared hooks, so the engine never guesses from attributes:
- `Options`: a frozen dataclass of the method's typed options, read from the config section named
  after the method (`--set NAME.option=value`), validated, part of the run id, shown by `bench list methods`;
- `from_config(cfg)`: builds the instance from the resolved config (default: `cls(options=...)`);
- `weights_for(options)`: the weight files a run with these options needs (default: every file in `weights`);
  the instance's `weights` is set from it, so the engine's checks, `bench weights download --for` and the
  provenance follow the options;
- `input_images(protocol)`: extra per-pair images the engine prepares like protocol images (default: none);
- `check_protocol(protocol)`: raise ValueError, before any work, if the options cannot run on this protocol;
- `pair_generator(pair_id, device)`: the random generator of one pair, seeded by (run seed, pair id),
  so a swap never depends on batch size, batch composition, worker count or DDP rank;
- `note(pair_id, text)`: a remark on one pair's swap that is not a failure (e.g. a fallback the official
  code takes silently); the engine stores it with the swap and reports it with the run.
- `frame_paste(frame, crop, matrix)`: the method's own paste-back of one of its crops into the full frame
  (uint8 arrays, matrix frame -> crop), used where pictures show swaps in their frames (the leaderboard's
  frame grid); None (the default): the engine's landmark-hull paste. Scoring never uses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import dataclass, field
from typing import ClassVar

import lightning as L
import torch

from swapbench.registry import UnknownName
from swapbench.weights import WeightFile


@dataclass
class FaceBatch:
    """Aligned face crops of one crop convention (the source's batch: the method's source_convention).

    image: float tensor [B, 3, S, S] in [0, 1], RGB.
    landmarks: float tensor [B, 68, 2], dlib 68-point landmarks in crop pixel coordinates (x, y).
    pair_id: the protocol pair of each row (for per-pair randomness and notes).
    matrix: float tensor [B, 2, 3], the image -> crop affine transform of each row, or None.
    location: the file (or URI) each row was cropped from, e.g. to find a data set's own annotation.
    """

    image: torch.Tensor
    landmarks: torch.Tensor
    pair_id: list[str] = field(default_factory=list)
    matrix: torch.Tensor | None = None
    location: list[str] = field(default_factory=list)

    def row(self, i: int) -> "FaceBatch":
        """The batch of row i alone."""
        one = slice(i, i + 1)
        return FaceBatch(self.image[one], self.landmarks[one], self.pair_id[one],
                         None if self.matrix is None else self.matrix[one], self.location[one])

    def __len__(self) -> int:
        return self.image.shape[0]


class SwapMethod(L.LightningModule):
    """Base class of every face-swap method.

    Subclasses set the class attributes and implement `swap`. `predict_step` turns a batch from the
    engine into two FaceBatches, calls `swap` and returns the swapped crops with the pair ids. If a
    batch fails, each pair is retried alone so one bad pair cannot take the batch down; the reason
    of every failed pair is returned for the results store.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""  # e.g. "GHOST (IEEE Access 2022)"
    code: ClassVar[str] = ""  # the official repository
    crop: ClassVar[str] = "ffhq"  # crop convention, see swapbench.faces.templates
    size: ClassVar[int] = 256  # crop side in pixels
    # The source's own convention where it differs from the target's (e.g. an ArcFace-112 source for an
    # FFHQ-256 target); None: the same as `crop` / `size`. Scoring, paste-back and grids use the target's.
    source_crop: ClassVar[str | None] = None
    source_size: ClassVar[int | None] = None
    weights: ClassVar[tuple[WeightFile, ...]] = ()
    # True for reference rows (e.g. methods run with random weights in tests): never published.
    publishable: ClassVar[bool] = True
    # The method's own paste-back for pictures (see the module docstring); a staticmethod, or None.
    frame_paste: ClassVar[typing.Callable | None] = None
    # What a reader of a run's provenance must know about how the port relates to the official outputs
    # (e.g. "official outputs are not seed-reproducible"); recorded with the method when not empty.
    provenance_note: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Options:
        """No options. A method with options declares its own frozen dataclass named Options."""

    def __init__(self, options=None):
        super().__init__()
        self.options = options if options is not None else self.Options()
        check_choices(type(self), self.options)
        self.weights = type(self).weights_for(self.options)
        self.seed = 0  # the run seed; the engine sets it (see pair_generator)
        # pair id -> the key its random draws are seeded by, where not the pair id itself: the clip id of
        # every frame under engine.video_noise=per_clip, so a clip reuses one noise draw (set by the engine)
        self.noise_keys: dict[str, str] = {}
        self._notes: dict[str, str] = {}

    @classmethod
    def from_config(cls, cfg: dict) -> "SwapMethod":
        """The instance for a resolved run config: options from the config section named after the method."""
        method = cls(options=parse_options(cls, cfg.get(cls.name)))
        method.seed = cfg["engine"]["seed"]
        return method

    @classmethod
    def weights_for(cls, options) -> tuple[WeightFile, ...]:
        """The weight files a run with these options needs; `weights` lists every file the method may use."""
        return cls.weights

    def option_values(self) -> dict:
        """The options as plain values (part of the run id and the provenance)."""
        return dataclasses.asdict(self.options)

    def input_images(self, protocol) -> dict[str, str] | None:
        """{pair id: image uri} of an extra image per pair, prepared by the engine like every protocol
        image and passed to `swap` in place of the source crop (e.g. precomputed swaps). None: no extra input."""
        return None

    def check_protocol(self, protocol) -> None:
        """Raise ValueError (one line naming the protocol it needs) if these options cannot run on `protocol`."""

    def pair_generator(self, pair_id: str, device: torch.device | str = "cpu") -> torch.Generator:
        """The random generator of one pair: seeded by (run seed, pair id), on the given device; a video
        frame's pair id names its frame, so draws are keyed by (seed, pair, frame) unless noise_keys maps
        the frame to its clip."""
        digest = hashlib.sha256(f"{self.seed}:{self.name}:{self.noise_keys.get(pair_id, pair_id)}".encode()).digest()
        return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)

    def note(self, pair_id: str, text: str) -> None:
        """Record a remark on this pair's swap (not a failure); stored with the swap by the engine."""
        self._notes[pair_id] = f"{self._notes[pair_id]}; {text}" if pair_id in self._notes else text

    def take_notes(self, pair_ids) -> list[str | None]:
        """The notes of these pairs (None where there is none), forgotten once taken."""
        return [self._notes.pop(p, None) for p in pair_ids]

    @property
    def convention(self) -> str:
        """The target's crop convention (and of the swapped crops the method returns)."""
        return f"{self.crop}_{self.size}"

    @property
    def source_convention(self) -> str:
        """The source's crop convention: `source_crop` / `source_size`, each defaulting to the target's."""
        return f"{self.source_crop or self.crop}_{self.source_size or self.size}"

    def load_weights(self, state: dict[str, object]) -> None:
        """Receive the loaded contents of `weights`, keyed by WeightFile.name."""
        if self.weights:
            raise NotImplementedError(f"{self.name} declares weights but does not load them")

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        """Return the swapped faces, [B, 3, S, S] in [0, 1]: source identity, target attributes."""
        raise NotImplementedError

    def predict_step(self, batch, batch_idx: int = 0):
        ids = list(batch["pair_id"])
        src = FaceBatch(batch["source"], batch["source_landmarks"], ids, batch.get("source_matrix"),
                        list(batch.get("source_location", [])))
        tgt = FaceBatch(batch["target"], batch["target_landmarks"], ids, batch.get("target_matrix"),
                        list(batch.get("target_location", [])))
        try:
            out = self._checked_swap(src, tgt)
            return {"pair_id": ids, "image": out, "error": [None] * len(ids), "note": self.take_notes(ids)}
        except Exception as exc:  # noqa: BLE001 - isolate the failing pair below
            self.take_notes(ids)  # notes of a failed batch are made again pair by pair
            if len(ids) == 1:
                return {"pair_id": ids, "image": torch.zeros_like(tgt.image), "error": [f"{type(exc).__name__}: {exc}"],
                        "note": [None]}
        images, errors = [], []
        for i in range(len(ids)):
            try:
                images.append(self._checked_swap(src.row(i), tgt.row(i)))
                errors.append(None)
            except Exception as exc:  # noqa: BLE001 - recorded per pair, never dropped
                images.append(torch.zeros_like(tgt.image[i:i + 1]))
                errors.append(f"{type(exc).__name__}: {exc}")
        notes = [n if e is None else None for n, e in zip(self.take_notes(ids), errors)]
        return {"pair_id": ids, "image": torch.cat(images), "error": errors, "note": notes}

    def _checked_swap(self, src: FaceBatch, tgt: FaceBatch) -> torch.Tensor:
        out = self.swap(src, tgt)
        if out.shape != tgt.image.shape:
            raise ValueError(f"{self.name} returned shape {tuple(out.shape)}, expected {tuple(tgt.image.shape)}")
        if not torch.isfinite(out).all():
            raise ValueError(f"{self.name} returned non-finite values")
        return out.clamp(0, 1)


def option_fields(cls: type[SwapMethod]) -> list[tuple[str, object, object]]:
    """(name, type, default) of each option a method declares."""
    hints = typing.get_type_hints(cls.Options)
    return [(f.name, hints[f.name], f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(cls.Options)]


def parse_options(cls: type[SwapMethod], section: dict | None):
    """cls.Options from a config section, every key and type checked, with messages naming the key."""
    section = dict(section or {})
    fields = {name: (typ, default) for name, typ, default in option_fields(cls)}
    unknown = sorted(set(section) - set(fields))
    if unknown:
        known = ", ".join(fields) or "none"
        raise UnknownName(f"unknown option {cls.name}.{unknown[0]} for method {cls.name}; its options: {known}")
    values = {}
    for key, value in section.items():
        typ = fields[key][0]
        if typing.get_origin(typ) is typing.Literal:
            values[key] = value  # checked with the others' choices by check_choices below
            continue
        allowed = typing.get_args(typ) or (typ,)
        if value is None and type(None) in allowed:
            values[key] = None
            continue
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not any(isinstance(value, t) and not (t is int and isinstance(value, bool))
                   for t in allowed if isinstance(t, type)):
            names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
            raise TypeError(f"option {cls.name}.{key} must be {names}, got {value!r}")
        values[key] = value
    options = cls.Options(**values)
    check_choices(cls, options)
    return options


def check_choices(cls: type[SwapMethod], options) -> None:
    """Raise ValueError for an option declared as typing.Literal[...] whose value is not one of its choices."""
    for name, typ, _ in option_fields(cls):
        if typing.get_origin(typ) is typing.Literal and getattr(options, name) not in typing.get_args(typ):
            choices = ", ".join(map(str, typing.get_args(typ)))
            raise ValueError(f"option {cls.name}.{name} must be one of {choices}, got {getattr(options, name)!r}")
