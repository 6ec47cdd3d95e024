"""Training-time augmentations: random crops, flips, FILM's fixed resize, and the registry papers add theirs to.

A sample is a dict: ``a``, ``b`` [H, W] float32 in [0, 1] (grey / Y), optionally ``a_rgb``/``b_rgb`` [H, W, 3],
``mask`` [H, W] and, in degradation training, the clean sources ``clean_a``/``clean_b`` (these are *spatial*:
every geometric change applies to them together), the pair's ``name`` (a string), plus guidance tensors
(``text`` [L, D], ``image_embed_a`` [D], ...) that pass through unchanged. An augmentation registered in
`AUGMENTATIONS` is ``fn(sample, rng: numpy.random.Generator) -> list[sample]``: it may return several samples (MTIF's
enrichment returns a centre crop and four peripheral crops). A model names the one its paper uses in
`spec.train_augment`; ``fusekit train --augment`` adds more by name.
"""

from __future__ import annotations

import numpy as np

from ..registry import Registry

AUGMENTATIONS: Registry = Registry("augmentation")
# Augmentations that live beside their model, imported when first used.
AUGMENTATIONS.add_lazy("mtif-enrichment", "fusekit.models.enrichment:enrichment_augmentation")

SPATIAL_KEYS = ("a", "b", "a_rgb", "b_rgb", "mask", "clean_a", "clean_b")

# FILM's training size (released data_process.py), (height, width).
FILM_SIZE = (288, 384)


def spatial_keys(sample: dict) -> list[str]:
    return [key for key in SPATIAL_KEYS if key in sample]


def map_spatial(sample: dict, fn) -> dict:
    """A copy of `sample` with `fn(array)` applied to every spatial array (same geometry for all)."""
    out = dict(sample)
    for key in spatial_keys(sample):
        out[key] = np.ascontiguousarray(fn(sample[key]))
    return out


def crop(sample: dict, top: int, left: int, height: int, width: int) -> dict:
    return map_spatial(sample, lambda x: x[top:top + height, left:left + width])


def random_crop(sample: dict, size: int, rng: np.random.Generator) -> dict:
    """A random `size` × `size` window; an image smaller than that on a side is reflect-padded up to it first."""
    h, w = sample["a"].shape[:2]
    if h < size or w < size:
        pad_h, pad_w = max(0, size - h), max(0, size - w)

        def pad(x):
            widths = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (x.ndim - 2)
            return np.pad(x, widths, mode="reflect" if min(h, w) > 1 else "edge")

        sample = map_spatial(sample, pad)
        h, w = sample["a"].shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return crop(sample, top, left, size, size)


def centre_crop(sample: dict, size: int) -> dict:
    """The central `size` × `size` window (validation crops are deterministic); smaller images are kept whole."""
    h, w = sample["a"].shape[:2]
    ch, cw = min(size, h), min(size, w)
    return crop(sample, (h - ch) // 2, (w - cw) // 2, ch, cw)


def resize(sample: dict, height: int, width: int) -> dict:
    """Bilinear resize of every spatial array (masks: nearest, so they stay binary)."""
    from PIL import Image

    def one(x: np.ndarray, resample) -> np.ndarray:
        if x.shape[:2] == (height, width):
            return x
        if x.ndim == 3:
            return np.stack([one(x[..., c], resample) for c in range(x.shape[2])], axis=-1)
        image = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))  # mode "F"
        return np.asarray(image.resize((width, height), resample), dtype=np.float32)

    out = dict(sample)
    for key in spatial_keys(sample):
        out[key] = one(sample[key], Image.NEAREST if key == "mask" else Image.BILINEAR)
    return out


def transpose(sample: dict) -> dict:
    return map_spatial(sample, lambda x: np.swapaxes(x, 0, 1))


def film_resize(sample: dict) -> dict:
    """FILM's fixed training size (released data_process.py): every pair becomes 288 high × 384 wide.

    A landscape (or square) image is resized to 384 × 288; a portrait one to 288 × 384 and then transposed, so a
    batch always has one shape.
    """
    h, w = sample["a"].shape[:2]
    if w >= h:
        return resize(sample, *FILM_SIZE)
    return transpose(resize(sample, FILM_SIZE[1], FILM_SIZE[0]))


@AUGMENTATIONS.register("flip")
def random_flip(sample: dict, rng: np.random.Generator) -> list[dict]:
    """Horizontal and vertical flips, each with probability ½ (the same for both images of the pair)."""
    if rng.random() < 0.5:
        sample = map_spatial(sample, lambda x: x[:, ::-1])
    if rng.random() < 0.5:
        sample = map_spatial(sample, lambda x: x[::-1])
    return [sample]


@AUGMENTATIONS.register("rot90")
def random_rot90(sample: dict, rng: np.random.Generator) -> list[dict]:
    """A random rotation by a multiple of 90° (only 0° or 180° for non-square samples, so batch shapes hold)."""
    h, w = sample["a"].shape[:2]
    k = int(rng.integers(0, 4)) if h == w else 2 * int(rng.integers(0, 2))
    return [map_spatial(sample, lambda x: np.rot90(x, k, axes=(0, 1)))] if k else [sample]


@AUGMENTATIONS.register("film-resize")
def film_resize_augmentation(sample: dict, rng: np.random.Generator) -> list[dict]:
    """FILM's released training resize as a pipeline step (deterministic; `rng` unused)."""
    return [film_resize(sample)]


def apply(names: list[str], sample: dict, rng: np.random.Generator) -> list[dict]:
    """Run the named augmentations in order; each may turn one sample into several."""
    samples = [sample]
    for name in names:
        fn = AUGMENTATIONS.get(name)
        samples = [out for s in samples for out in fn(s, rng)]
    return samples
