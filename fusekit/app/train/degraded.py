"""Degradation training (Text-IF style) for text-guided models: the ``degrade-<task>`` augmentations.

Each sample's sources are degraded with one of the task's recipes (`fusekit.models.degrade.TASK_DEGRADATIONS`:
a dark and noisy visible image, a low-contrast infrared image, ...; a share stays clean), the DEGRADED pair is
described by the offline `stats` describer and encoded with the `offline` encoder, exactly what `fusekit fuse`
computes for a pair at inference, and the clean sources ride along as ``clean_a`` / ``clean_b`` for the loss
(`fusekit.models.compact_loss`). So the text names what is wrong and the target is the fusion of the clean pair:
the model learns to correct what the text says. A share of the degraded samples (`UNNAMED_FRACTION`) gets the
description without its findings and the degraded sources as their own targets: text that names nothing asks for
no correction, so what switches a correction on is the text, not something the network could see for itself
(and a user's text that leaves a degradation out leaves it alone, Text-IF's interactive fusion).

It runs before the crop, on the whole image, so the text describes what inference would see. A pair gets one of
`VARIANTS` degraded versions per epoch, each fixed by (pair name, variant), so its description is computed once and
kept (as words; encoding them again is cheap).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from ...guidance.describe.measure import degradations, measure
from ...guidance.describe.stats import MODEL_ID, describe_arrays
from ...guidance.text import encode_descriptions
from ...io.formats import ROLES, new_descriptions
from ...models import degrade
from ...models.augment import AUGMENTATIONS

VARIANTS = 16  # versions per pair (each: a recipe, or clean, and its random strengths): texts enough for the findings
# reader to learn the words rather than memorise the texts (FindingsReader), few enough that describing stays cheap
UNNAMED_FRACTION = 0.25  # degraded samples whose text leaves the findings out (and whose target is the input)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def measure_pair(a: np.ndarray, b: np.ndarray) -> dict:
    """The describer's measurements of both sources (uint8 grey), once per image."""
    return {"a": measure(a), "b": measure(b)}


def pair_texts(a: np.ndarray, b: np.ndarray, task: str, name: str, findings: bool = True,
               measured: dict | None = None) -> list[dict]:
    """The `stats` describer's texts of both sources (uint8 grey), as `fusekit describe` writes them for files
    named after the pair (MIF's B modality is read from the name's CT_/PET_/SPECT_ prefix)."""
    pixels = {"a": a, "b": b}
    measured = measure_pair(a, b) if measured is None else measured
    return [describe_arrays(pixels[role], task, role, f"{name}.png", findings=findings,
                            measured=(measured[role], measured["b" if role == "a" else "a"])) for role in ROLES]


def named_kinds(measured: dict, task: str) -> np.ndarray:
    """[2, len(CORRECTED_KINDS)]: 1 where the pair's text names that kind for that source — the findings reader's
    label. What the text says, not the recipe: a training image that is over-exposed by nature is named so too."""
    label = np.zeros((len(ROLES), len(degrade.CORRECTED_KINDS)), np.float32)
    for index, role in enumerate(ROLES):
        for kind in degradations(measured[role], task, role):
            if kind in degrade.CORRECTED_KINDS:
                label[index, degrade.CORRECTED_KINDS.index(kind)] = 1.0
    return label


def text_features(texts: list[dict], task: str, prompt: str | None = None) -> np.ndarray:
    """[L, 768] `offline` text features of a pair's texts (what `fuse` computes on the fly for the bundled model)."""
    images = [{"path": f"{role}.png", "sha256": "", "role": role, "texts": text} for role, text in zip(ROLES, texts)]
    document = new_descriptions(task, ["stats"], {"stats": MODEL_ID}, images)
    if prompt:
        document["prompt"] = prompt
    return encode_descriptions(document, "offline")[0]["text"].numpy()


def _variant_rng(name: str, variant: int) -> np.random.Generator:
    seed = int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng([seed, variant])


# (pair name, variant, task, shape) → the pair's texts (None: a clean version, described by the ordinary guidance
# path) and the kinds they name; a few kB per entry.
_DESCRIBED: dict[tuple, tuple[list[dict] | None, np.ndarray]] = {}


def degrade_sample(sample: dict, rng: np.random.Generator, task: str) -> list[dict]:
    """`sample` with one source degraded (or none), its text recomputed, the clean sources kept for the loss and
    what the text names (``findings``) for the findings reader."""
    out = dict(sample)
    out["clean_a"], out["clean_b"] = sample["a"], sample["b"]
    name = str(sample.get("name", ""))
    variant = int(rng.integers(0, VARIANTS))
    variant_rng = _variant_rng(name, variant)
    recipe = degrade.random_recipe(task, variant_rng)
    if recipe is not None and not all(degrade.applicable(kind, sample[recipe[0]]) for kind in recipe[1]):
        recipe = None
    named = True
    if recipe is not None:
        role, kinds = recipe
        out[role] = degrade.degrade(sample[role], kinds, variant_rng)
        named = variant_rng.random() >= UNNAMED_FRACTION
        if not named:
            out["clean_" + role] = out[role]
    key = (name, variant if recipe is not None else -1, task, sample["a"].shape)
    if key not in _DESCRIBED:
        pixels = to_uint8(out["a"]), to_uint8(out["b"])
        measured = measure_pair(*pixels)
        texts = pair_texts(*pixels, task, name, findings=named, measured=measured) if recipe is not None else None
        _DESCRIBED[key] = texts, named_kinds(measured, task) * np.float32(named)  # unnamed text: no label
    texts, out["findings"] = _DESCRIBED[key]
    # what the model reads of the whole images (CompactFusion.whole_image_names), before the crop
    out["levels"] = np.array([out["a"].mean(), out["b"].mean()], np.float32)
    out["spreads"] = np.array([out["a"].std(), out["b"].std()], np.float32)
    if texts is not None:
        out["text"] = text_features(texts, task)
    return [out]


for _task in degrade.TASK_DEGRADATIONS:
    AUGMENTATIONS.add(f"degrade-{_task}", functools.partial(degrade_sample, task=_task))
