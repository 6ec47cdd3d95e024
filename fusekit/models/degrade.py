"""Synthetic degradations of fusion sources, the training signal that makes text matter (Text-IF, CVPR 2024).

A degraded pair is what a camera hands over on a bad day: a dark and noisy visible image at night, a washed-out
infrared image, an over-exposed frame, camera shake. The compact model is trained on such pairs, told in words
what is wrong (the `stats` describer names it), and scored against the fusion targets of the CLEAN pair, so it
learns to correct what the text names. Each kind is a simple, monotone (hence learnable to undo) operation on a
grey image in [0, 1]; the parameter ranges are strong enough that the describer's calibrated thresholds
(`fusekit.guidance.describe.measure`) find every one of them.

`TASK_DEGRADATIONS` says which kinds make sense for which source of each task: over/under exposure is what MEF
is about and defocus what MFF is about, so those tasks only get noise and low contrast. The model corrects
`CORRECTED_KINDS`, Text-IF's kinds: blur is made here (the describer's tests name it) but not trained on — a local
correction sharpening σ 2–3.5 px blur overshot in every task (−0.6 to −4.1 dB in the ablation), so the bundled
model leaves blur alone rather than claim what it cannot do.
"""

from __future__ import annotations

import numpy as np

KINDS = ("dark", "noisy", "over-exposed", "low-contrast", "blurred")  # what can be made (and the describer names)
CORRECTED_KINDS = ("dark", "noisy", "over-exposed", "low-contrast")  # what the compact model reads and corrects

# (role, kinds) choices per task: one entry is one degraded-pair recipe; several kinds in an entry are applied in
# KINDS order (darken, then add noise: night-time sensor noise on a dark image).
TASK_DEGRADATIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "ivf": (("b", ("dark",)), ("b", ("dark", "noisy")), ("b", ("over-exposed",)), ("b", ("noisy",)),
            ("b", ("low-contrast",)), ("a", ("low-contrast",)), ("a", ("noisy",))),
    "mif": (("a", ("noisy",)), ("b", ("noisy",)), ("a", ("low-contrast",)), ("b", ("low-contrast",))),
    "mef": (("a", ("noisy",)), ("b", ("noisy",)), ("a", ("low-contrast",)), ("b", ("low-contrast",))),
    "mff": (("a", ("noisy",)), ("b", ("noisy",)), ("a", ("low-contrast",)), ("b", ("low-contrast",))),
}
CLEAN_FRACTION = 0.25  # share of training samples left clean (so clean text means "change nothing")


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(x, sigma, mode="reflect").astype(np.float32)


def _smooth(x: np.ndarray) -> np.ndarray:
    """The image without its finest texture and noise (σ = 2 px), what exposure and contrast are judged on."""
    return gaussian_blur(x, 2.0)


def darken(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Under-exposure: a gamma of 1.2–1.6, then a gain that puts the highlights (99th percentile of the smoothed
    image) at 60–85 grey levels: a frame shot with far too little light."""
    x = x ** rng.uniform(1.2, 1.6)
    highlights = float(np.percentile(_smooth(x), 99))
    return (x * min(1.0, rng.uniform(60, 85) / 255 / max(highlights, 1e-6))).astype(np.float32)


def add_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: additive Gaussian, σ = 10–20 grey levels."""
    return np.clip(x + rng.normal(0.0, rng.uniform(10, 20) / 255, x.shape), 0.0, 1.0).astype(np.float32)


MAX_OVER_GAMMA = 8.0  # beyond this the levels are crushed into the last few 8-bit steps: nothing left to recover


def applicable(kind: str, x: np.ndarray) -> bool:
    """Whether `kind` can be applied to `x` as a recoverable degradation: over-exposure needs enough mid-tones to
    push up (a night image would have to be turned white, γ > MAX_OVER_GAMMA); every other kind always applies."""
    return kind != "over-exposed" or float((1.0 - (1.0 - x) ** MAX_OVER_GAMMA).mean()) >= 210 / 255


def over_expose(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Over-exposure: 1 − (1 − x)^γ, γ ≤ MAX_OVER_GAMMA found by bisection so the mean level lands at 205–225 of
    255 (mid-tones pushed up, highlights compressed towards white; monotone, so the information is still there)."""
    target = rng.uniform(205, 225) / 255
    low, high = 1.0, MAX_OVER_GAMMA
    for _ in range(30):
        gamma = (low + high) / 2
        low, high = (gamma, high) if float((1.0 - (1.0 - x) ** gamma).mean()) < target else (low, gamma)
    return (1.0 - (1.0 - x) ** ((low + high) / 2)).astype(np.float32)


def low_contrast(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Low contrast: levels squeezed around the mean until the smoothed image's standard deviation is 3–7 grey
    levels (haze, a thermally flat scene, a badly windowed scan)."""
    mean, spread = float(x.mean()), float(_smooth(x).std())
    return (mean + min(1.0, rng.uniform(3, 7) / 255 / max(spread, 1e-6)) * (x - mean)).astype(np.float32)


def blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Defocus or shake: Gaussian blur, σ = 2–3.5 pixels."""
    return gaussian_blur(x, rng.uniform(2.0, 3.5))


OPERATIONS = {"dark": darken, "noisy": add_noise, "over-exposed": over_expose, "low-contrast": low_contrast, "blurred": blur}


def quantise(x: np.ndarray) -> np.ndarray:
    """Round to 8-bit levels, as the degraded image would be stored (what the describer and the model see)."""
    return (np.round(np.clip(x, 0.0, 1.0) * 255) / 255).astype(np.float32)


def degrade(x: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """`x` [H, W] float in [0, 1] with each of `kinds` applied (in KINDS order), quantised to 8 bits."""
    for kind in sorted(kinds, key=KINDS.index):
        x = OPERATIONS[kind](x, rng)
    return quantise(x)


def random_recipe(task: str, rng: np.random.Generator) -> tuple[str, tuple[str, ...]] | None:
    """A (role, kinds) recipe for `task`, or None (a clean sample) with probability CLEAN_FRACTION; check
    `applicable` before using it."""
    if rng.random() < CLEAN_FRACTION:
        return None
    recipes = TASK_DEGRADATIONS[task]
    return recipes[int(rng.integers(0, len(recipes)))]
