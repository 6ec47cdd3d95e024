"""The offline `stats` describer: words written from pixel measurements, no model weights.

It is the default because it runs anywhere, is deterministic (same pixels → same text) and is what fusekit's
bundled model was trained on. It says what a fusion model needs to know about each source: how it is exposed
(clipping, mean level), its contrast, where it is sharp or blurred (and, for a pair, where it is sharper or better
exposed than its partner), bright thermal/uptake regions and where they are, how dense its edges are, and what
is wrong with it: dark, over-exposed, low in contrast, noisy or blurred (Text-IF's degradation-aware guidance;
thresholds in `measure.py`), named with the source, "Degradation: the visible image is dark and noisy.", in the
caption, the paragraph (right after the caption) and the level it belongs to (exposure and contrast: structure;
noise and blur: detail). The bundled `compact` model was trained to correct what these sentences name. The
text is written at MTIF's three levels (detail, structure, semantic), plus a caption and a FILM-style paragraph
that joins them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Describer, ImageInfo
from .measure import COL_NAMES, ROW_NAMES, Measurements, degradations, measure, region_name

MODEL_ID = "fusekit-stats-1"


def _pct(fraction: float) -> str:
    value = 100.0 * fraction
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


def join_words(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def cells_phrase(mask: np.ndarray) -> str:
    """Words for a set of 3 × 3 grid cells: "the whole frame", "the top third", "the left third", or a list."""
    count = int(mask.sum())
    if count == 9:
        return "the whole frame"
    for r in range(3):
        if count == 3 and mask[r].all():
            return f"the {ROW_NAMES[r]} third"
    for c in range(3):
        if count == 3 and mask[:, c].all():
            return f"the {COL_NAMES[c]} third" if c != 1 else "the central column"
    if count == 6:
        for r in range(3):
            if not mask[r].any():
                return f"all but the {ROW_NAMES[r]} third"
        for c in range(3):
            if not mask[:, c].any():
                return f"all but the {COL_NAMES[c]} third" if c != 1 else "the left and right thirds"
    names = [region_name(r, c) for r in range(3) for c in range(3) if mask[r, c]]
    if count >= 6:
        return "all but the " + join_words([region_name(r, c) for r in range(3) for c in range(3) if not mask[r, c]])
    if len(names) == 1:
        return f"the {names[0]}"
    return "the " + join_words(names)


def modality_words(task: str, role: str, path: str, m: Measurements) -> tuple[str, str]:
    """(noun phrase for this image, what it brings to the fused image) following FILM's task prompts."""
    if task == "ivf":
        if role == "a":
            return "an infrared (thermal) image", "thermal targets such as people, vehicles and other heat sources that stand out regardless of lighting"
        return "a visible-light image", "texture, edges and scene detail under the available light"
    if task == "mif":
        if role == "a":
            return "an MRI scan", "soft-tissue structure and anatomical boundaries"
        stem = Path(path).stem.upper()
        for prefix, words in (("PET", "a PET scan"), ("SPECT", "a SPECT scan"), ("CT", "a CT scan")):
            if stem.startswith(prefix):
                break
        else:
            words = "a functional (PET or SPECT) scan" if m.colour else "a CT or functional scan"
        if words == "a CT scan":
            return words, "dense structures such as bone and calcification"
        return words, "functional information: metabolic or blood-flow activity shown as intensity or colour"
    if task == "mef":
        if role == "a":
            return "an over-exposed photograph", "detail in the dark and shadowed parts of the scene"
        return "an under-exposed photograph", "detail in the bright parts of the scene such as sky, lamps and windows"
    return "a multi-focus photograph", "the regions that are in focus in this shot"


DEGRADATION_WORDS = {
    "dark": "dark (under-exposed)", "over-exposed": "over-exposed (washed out)", "low-contrast": "flat (low in contrast)",
    "noisy": "noisy", "blurred": "blurred",
}
STRUCTURE_KINDS = ("dark", "over-exposed", "low-contrast")  # the rest (noisy, blurred) belong to the detail level


def source_name(task: str, role: str, path: str) -> str:
    """The short name a degradation sentence (and a user's --prompt) gives a source: "the visible image"."""
    if task == "mif" and role == "b":
        stem = Path(path).stem.upper()
        name = next((prefix for prefix in ("SPECT", "PET", "CT") if stem.startswith(prefix)), "functional")
        return f"the {name} image"
    return "the " + {"ivf": ("infrared", "visible"), "mif": ("MRI", ""), "mef": ("over-exposed", "under-exposed"),
                     "mff": ("first", "second")}[task][role == "b"] + " image"


def degradation_sentence(kinds: list[str], task: str, role: str, path: str) -> str:
    """"Degradation: the visible image is dark (under-exposed) and noisy." ("" when nothing was found)."""
    if not kinds:
        return ""
    return f"Degradation: {source_name(task, role, path)} is {join_words([DEGRADATION_WORDS[k] for k in kinds])}."


def _level_word(mean: float) -> str:
    for limit, word in ((40, "very dark"), (85, "dark"), (170, "of medium brightness"), (210, "bright")):
        if mean < limit:
            return word
    return "very bright"


def _contrast_word(std: float) -> str:
    return "low" if std < 25 else "moderate" if std < 55 else "high"


def _sharpness_word(focus: float) -> str:
    return "soft, with little fine texture" if focus < 100 else "moderately sharp" if focus < 1000 else "crisp, with strong fine texture"


def _hotspot_noun(task: str, role: str, path: str) -> str:
    if task == "ivf" and role == "a":
        return "warm (bright) region"
    if task == "mif" and role == "b":
        stem = Path(path).stem.upper()
        return "high-density bright region" if stem.startswith("CT") else "high-activity region"
    if task == "mif":
        return "bright tissue region"
    return "bright spot"


def detail_text(m: Measurements, task: str, partner: Measurements | None) -> str:
    """MTIF's detail level: fine texture, sharpness and where it is, detail lost to clipping."""
    sentences = [f"Edges cover {_pct(m.edge_density)} of the image and the texture is {_sharpness_word(m.focus)}."]
    peak = m.cell_focus.max()
    if peak > 0:
        sharp = m.cell_focus >= 0.5 * peak
        blurred = m.cell_focus <= 0.15 * peak
        sentences.append(f"The sharpest texture is in {cells_phrase(sharp)}.")
        if blurred.any():
            phrase = cells_phrase(blurred)
            verb = "are" if " and " in phrase else "is"
            sentences.append(f"{phrase[0].upper()}{phrase[1:]} {verb} smooth or blurred.")
    if partner is not None and task == "mff":
        ratio = (m.cell_focus + 1.0) / (partner.cell_focus + 1.0)
        better, worse = ratio >= 1.5, ratio <= 1 / 1.5
        if better.any():
            sentences.append(f"It is in sharper focus than the other image in {cells_phrase(better)}.")
        if worse.any():
            sentences.append(f"It is more blurred than the other image in {cells_phrase(worse)}.")
        if not better.any() and not worse.any():
            sentences.append("Its focus is similar to the other image everywhere.")
    if m.bright_clipped >= 0.01:
        sentences.append(f"{_pct(m.bright_clipped)} of the pixels are saturated to white, so detail there is lost.")
    if m.dark_clipped >= 0.01:
        sentences.append(f"{_pct(m.dark_clipped)} of the pixels are crushed to black.")
    return " ".join(sentences)


def structure_text(m: Measurements, task: str, role: str, path: str, partner: Measurements | None) -> str:
    """MTIF's structure level: brightness layout, contrast, dominant edge direction, bright regions and positions."""
    sentences = [
        f"The image is {_level_word(m.mean)} overall (mean level {m.mean:.0f} of 255) with "
        f"{_contrast_word(m.std)} contrast (standard deviation {m.std:.0f}, levels from {m.p1:.0f} to {m.p99:.0f})."
    ]
    bright_cell = np.unravel_index(int(np.argmax(m.cell_mean)), (3, 3))
    dark_cell = np.unravel_index(int(np.argmin(m.cell_mean)), (3, 3))
    if m.cell_mean.max() - m.cell_mean.min() >= 30:
        sentences.append(
            f"The brightest part is the {region_name(*bright_cell)} and the darkest the {region_name(*dark_cell)}."
        )
    else:
        sentences.append("Brightness is fairly even across the frame.")
    if m.edge_density >= 0.01:
        if m.horizontal_share >= 0.6:
            sentences.append("Horizontal structures dominate.")
        elif m.horizontal_share <= 0.4:
            sentences.append("Vertical structures dominate.")
        dense = m.cell_edges >= max(0.6 * m.cell_edges.max(), 0.02)
        if dense.any():  # edges spread thinly everywhere (a low-contrast scan) leave no cell to name
            sentences.append(f"Edges are densest in {cells_phrase(dense)}.")
    if m.hotspots:
        noun = _hotspot_noun(task, role, path)
        parts = [f"the {spot.position} ({_pct(spot.area_fraction)} of the image, level {spot.mean_level:.0f})" for spot in m.hotspots]
        plural = noun if len(parts) == 1 else noun.replace("region", "regions").replace("spot", "spots")
        sentences.append(f"{len(parts)} {plural} stand{'s' if len(parts) == 1 else ''} out: {join_words(parts)}.")
    if partner is not None and task == "mef":
        better = m.cell_well_exposed - partner.cell_well_exposed >= 0.15
        if better.any():
            sentences.append(f"It is better exposed than the other image in {cells_phrase(better)}.")
    return " ".join(sentences)


def semantic_text(m: Measurements, task: str, role: str, path: str, partner: Measurements | None) -> str:
    """MTIF's semantic level: what the image is, what it contributes to the fusion, and evidence for it."""
    noun, contribution = modality_words(task, role, path, m)
    sentences = [f"This is {noun}; in the fused image it should contribute {contribution}."]
    if task == "ivf" and role == "a":
        if m.hotspots:
            where = join_words(dict.fromkeys(spot.position for spot in m.hotspots))
            sentences.append(f"Heat sources, likely people, vehicles or engines, appear in the {where}.")
        else:
            sentences.append("No distinct heat source stands out from the background.")
    elif task == "ivf":
        if m.mean < 60:
            sentences.append("The scene is dimly lit, probably at night, so the visible image shows little in the dark areas.")
        else:
            sentences.append("The scene is reasonably lit, so the visible image carries most of the texture.")
    elif task == "mif":
        background = m.dark_clipped + max(0.0, m.dark_fraction - m.dark_clipped)
        sentences.append(f"About {_pct(background)} of the frame is dark background around the anatomy.")
    elif task == "mef":
        if role == "a":
            sentences.append(f"Highlights are blown out in {_pct(m.bright_clipped)} of the frame while shadows keep their detail.")
        else:
            sentences.append(f"Shadows are lost in {_pct(m.dark_clipped)} of the frame while highlights keep their detail.")
    else:
        peak = m.cell_focus.max()
        sharp = m.cell_focus >= 0.5 * peak if peak > 0 else np.ones((3, 3), bool)
        if partner is not None:
            sharper = (m.cell_focus + 1.0) / (partner.cell_focus + 1.0) >= 1.5
            if sharper.any():
                sentences.append(f"Its in-focus content, sharper than in the other image, lies in {cells_phrase(sharper)}.")
            else:
                sentences.append("No region is in clearly sharper focus here than in the other image.")
        else:
            sentences.append(f"The focused subject lies in {cells_phrase(sharp)}.")
    sentences.append("It is a colour image." if m.colour else "It is a greyscale image.")
    return " ".join(sentences)


def caption_text(m: Measurements, task: str, role: str, path: str) -> str:
    """One sentence, the stand-in for a BLIP-2 caption."""
    noun, _ = modality_words(task, role, path, m)
    text = f"{noun[0].upper()}{noun[1:]}, {_level_word(m.mean)} with {_contrast_word(m.std)} contrast"
    if m.hotspots and (task in ("ivf", "mif")):
        where = join_words(dict.fromkeys(spot.position for spot in m.hotspots))
        text += f" and bright regions in the {where}"
    return text + "."


def describe_arrays(image: np.ndarray, task: str, role: str, path: str, partner: np.ndarray | None = None,
                    measured: tuple[Measurements, Measurements | None] | None = None, findings: bool = True) -> dict:
    """Texts for one image (`partner` is the other image of the pair, for pair-relative sentences); `findings=False`
    leaves the degradation findings out (the "text that does not name it" of benchmarks/guidance_ablation.py)."""
    m, other = measured if measured is not None else (measure(image), measure(partner) if partner is not None else None)
    levels = {
        "detail": detail_text(m, task, other),
        "structure": structure_text(m, task, role, path, other),
        "semantic": semantic_text(m, task, role, path, other),
    }
    caption = caption_text(m, task, role, path)
    found = degradations(m, task, role) if findings else []
    if found:
        caption = caption[:-1] + f"; it is {join_words([DEGRADATION_WORDS[k] for k in found])}."
        for level, kinds in (("structure", [k for k in found if k in STRUCTURE_KINDS]),
                             ("detail", [k for k in found if k not in STRUCTURE_KINDS])):
            if kinds:
                levels[level] = f"{degradation_sentence(kinds, task, role, path)} {levels[level]}"
    sentence = degradation_sentence(found, task, role, path)
    paragraph = " ".join(part for part in [caption, sentence, levels["semantic"], levels["structure"], levels["detail"]] if part)
    return {"caption": caption, "paragraph": paragraph, "levels": levels}


class StatsDescriber(Describer):
    """Offline, deterministic descriptions from pixel measurements (no weights)."""

    name = "stats"
    default_model = MODEL_ID
    cached = False  # cheaper to recompute than to look up, and it depends on the partner image

    def describe(self, image: ImageInfo) -> dict:
        measured = _measured(image)
        partner = _measured(image.partner) if image.partner is not None else None
        texts = describe_arrays(image.pixels, image.task, image.role, image.path, measured=(measured, partner))
        image.memo["stats_paragraph"] = texts["paragraph"]  # the llm backend quotes it as measured statistics
        return texts


def _measured(image: ImageInfo) -> Measurements:
    if "measurements" not in image.memo:
        image.memo["measurements"] = measure(image.pixels)
    return image.memo["measurements"]
