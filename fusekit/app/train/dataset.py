"""Training pairs in memory, and the per-sample pipeline (resize, paper augmentation, crop, flips) that feeds batches.

Every pair is decoded once, before the first step, and kept as 8-bit grey (float32 only for 16-bit sources), so an
epoch costs no file reads or PNG decoding: on a CPU, decoding would otherwise take longer than a small model's
step. Grey is BT.601 rounded, `fusekit.io.images.to_grey` (the convention of FILM and of the metrics); for losses
that need colour (``needs_rgb`` on the loss function) the RGB sources are kept too.

Randomness is a function of (seed, epoch, pair index) only, so a run gives the same samples whatever the number
of processes, loader workers, or interruptions: what makes resume and the DDP/single-process equivalence exact.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ...errors import FusekitError
from ...io.images import grey_input, max_value, read_image, to_grey
from ...io.pairs import Item
from ...models import augment
from ...guidance.kinds import SPATIAL_GUIDANCE
from ...guidance.sources import PairGuidance


@dataclass
class Pair:
    """One decoded training pair: grey A/B (uint8, or float32 in [0, 1] for 16-bit), optional RGB, guidance."""

    name: str
    a: np.ndarray
    b: np.ndarray
    guidance: dict[str, np.ndarray] = field(default_factory=dict)
    a_rgb: np.ndarray | None = None
    b_rgb: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.a.shape[:2]

    def sample(self) -> dict:
        """The pair as a pipeline sample: float32 in [0, 1], guidance alongside."""
        out = {"a": as_unit(self.a), "b": as_unit(self.b)}
        if self.a_rgb is not None:
            out["a_rgb"], out["b_rgb"] = as_unit(self.a_rgb), as_unit(self.b_rgb)
        out.update(self.guidance)
        return out


def as_unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def _grey_store(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return to_grey(image).astype(np.uint8)
    return grey_input(image).astype(np.float32)


def _rgb_store(image: np.ndarray) -> np.ndarray:
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    return rgb if rgb.dtype == np.uint8 else (rgb.astype(np.float32) / np.float32(max_value(image)))


def load_pair(item: Item, keep_rgb: bool) -> Pair:
    a, b = read_image(item.a), read_image(item.b)
    if a.shape[:2] != b.shape[:2]:
        raise FusekitError(f"pair {item.name}: A is {a.shape[1]}x{a.shape[0]} but B is {b.shape[1]}x{b.shape[0]}", "training pairs must be registered images of one size")
    pair = Pair(item.name, _grey_store(a), _grey_store(b))
    if keep_rgb:
        pair.a_rgb, pair.b_rgb = _rgb_store(a), _rgb_store(b)
    return pair


def load_pairs(items: list[Item], keep_rgb: bool, guidance: PairGuidance | None, progress_label: str = "loading pairs") -> list[Pair]:
    """Decode every pair (a few threads: PNG decoding releases the GIL) and attach its guidance."""
    from ... import log

    threads = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(threads) as pool:
        pairs = list(log.progress(pool.map(lambda item: load_pair(item, keep_rgb), items), total=len(items), description=progress_label))
    if guidance is not None:
        for pair, item in zip(pairs, log.progress(items, total=len(items), description="guidance")):
            pair.guidance = {name: tensor.numpy() for name, tensor in guidance.for_item(item, size=pair.shape).items()}
    return pairs


@dataclass
class Pipeline:
    """What happens to each sample, in order: FILM resize, the paper's augmentation, a random crop, extra steps."""

    resize: str | None = None  # "film" or None
    paper_augment: str | None = None  # AUGMENTATIONS name from spec.train_augment
    crop: int | None = None
    extra: tuple[str, ...] = ()  # AUGMENTATIONS names applied after the crop (e.g. "flip")

    def __call__(self, sample: dict, rng: np.random.Generator) -> list[dict]:
        if self.resize == "film":
            sample = augment.film_resize(sample)
        samples = augment.apply([self.paper_augment], sample, rng) if self.paper_augment else [sample]
        if self.crop:
            samples = [augment.random_crop(s, self.crop, rng) for s in samples]
        return [out for s in samples for out in augment.apply(list(self.extra), s, rng)]

    def fixed_shape(self) -> bool:
        """Whether every sample comes out the same size (so batches need no equal-sized sources)."""
        return bool(self.crop) or self.resize == "film"


class PairDataset:
    """A map-style dataset over in-memory pairs; item i of epoch e is deterministic in (seed, e, i)."""

    def __init__(self, pairs: list[Pair], pipeline: Pipeline, seed: int):
        self.pairs, self.pipeline, self.seed = pairs, pipeline, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        # The name rides along for augmentations that describe the pair again (degradation training); batches drop it.
        return self.pipeline({"name": self.pairs[index].name, **self.pairs[index].sample()}, rng)


def collate(batch: list[list[dict]]):
    """Stack samples into a batch of torch tensors: images [B, 1, H, W], RGB [B, 3, H, W], guidance [B, ...].

    Token sequences of different lengths are zero-padded to the longest in the batch (encoders that pad to a fixed
    length never need this).
    """
    import torch

    samples = [s for group in batch for s in group]
    out = {}
    for key in samples[0]:
        arrays = [s[key] for s in samples]
        if isinstance(arrays[0], str):
            continue
        if key in ("a", "b", "clean_a", "clean_b") or key in SPATIAL_GUIDANCE:
            out[key] = torch.from_numpy(np.stack(arrays)[:, None].astype(np.float32))
        elif key in ("a_rgb", "b_rgb"):
            out[key] = torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).astype(np.float32))
        elif arrays[0].ndim == 2 and len({a.shape[0] for a in arrays}) > 1:
            length = max(a.shape[0] for a in arrays)
            padded = np.zeros((len(arrays), length, arrays[0].shape[1]), np.float32)
            for i, a in enumerate(arrays):
                padded[i, : a.shape[0]] = a
            out[key] = torch.from_numpy(padded)
        else:
            out[key] = torch.from_numpy(np.stack(arrays).astype(np.float32))
    return out
