"""Comparison figures: source A, source B and each method's result side by side, each panel labelled, with the same
region boxed on every panel and shown enlarged in a corner of it (the zoomed inset of fusion papers).

The region is ``--zoom x,y,w,h`` in source pixels, or chosen automatically as the window where the methods' results
differ most: the largest sum, over a window a quarter of the image's short side, of the per-pixel standard deviation
across the methods' grey results (with one method: its distance to the mean of the sources). The inset goes in the
corner farthest from the region, so it never hides what it enlarges. Each figure is written as PNG and PDF, with a
JSON file giving every panel's and box's position in figure pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ...errors import UsageError
from ...io.images import to_grey

BOX_COLOUR = (230, 25, 25)
BACKGROUND = (255, 255, 255)
GAP, LABEL_HEIGHT, LINE = 8, 22, 2
INSET_FRACTION = 0.42  # of the panel's width
# How figures label the two sources, per task (fusekit's A/B order).
SOURCE_LABELS = {"ivf": ("Infrared", "Visible"), "mif": ("MRI", "CT / PET / SPECT"), "mef": ("Over-exposed", "Under-exposed"), "mff": ("Source A", "Source B")}


@dataclass(frozen=True)
class Zoom:
    x: int
    y: int
    w: int
    h: int
    chosen: str  # "given" or "auto"

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def parse_zoom(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError as exc:
        raise UsageError(f"bad --zoom {text!r}", "write x,y,w,h in source pixels, e.g. 100,80,120,90") from exc
    if w < 4 or h < 4 or x < 0 or y < 0:
        raise UsageError(f"bad --zoom {text!r}", "x and y >= 0, width and height >= 4")
    return x, y, w, h


def choose_zoom(results: list[np.ndarray], a: np.ndarray, b: np.ndarray, given: tuple[int, int, int, int] | None) -> Zoom:
    height, width = a.shape[:2]
    if given is not None:
        x, y, w, h = given
        if x + w > width or y + h > height:
            raise UsageError(f"--zoom {x},{y},{w},{h} lies outside the {width}x{height} images", "choose a region inside them")
        return Zoom(x, y, w, h, "given")
    greys = [_grey(r) for r in results]
    if len(greys) >= 2:
        spread = np.std(np.stack(greys), axis=0)
    else:
        spread = np.abs(greys[0] - (_grey(a) + _grey(b)) / 2)
    side = max(8, min(height, width) // 4)
    w, h = min(side, width), min(side, height)
    integral = np.pad(spread.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return Zoom(int(x), int(y), w, h, "auto")


def _grey(image: np.ndarray) -> np.ndarray:
    scale = 257.0 if image.dtype == np.uint16 else 1.0
    return to_grey(image, rounded=False) / np.float32(scale)


def _to_pil(image: np.ndarray):
    from PIL import Image

    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    if image.ndim == 2:
        return Image.fromarray(image, "L").convert("RGB")
    return Image.fromarray(image.astype(np.uint8), "RGB")


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=15)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render(panels: list[tuple[str, np.ndarray]], zoom: Zoom, panel_height: int, columns: int):
    """(figure image, layout) for labelled panels; all panels have the size of the sources."""
    from PIL import Image, ImageDraw

    source_h, source_w = panels[0][1].shape[:2]
    scale = panel_height / source_h
    panel_w, panel_h = max(1, round(source_w * scale)), panel_height
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    size = (columns * panel_w + (columns + 1) * GAP, rows * (panel_h + LABEL_HEIGHT) + (rows + 1) * GAP)
    figure = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(figure)
    font = _font()
    box = (round(zoom.x * scale), round(zoom.y * scale), max(2, round(zoom.w * scale)), max(2, round(zoom.h * scale)))
    inset_w = max(8, round(panel_w * INSET_FRACTION))
    inset_h = max(8, round(inset_w * zoom.h / zoom.w))
    if inset_h > panel_h * INSET_FRACTION * 1.5:  # a tall region: bound the inset by height instead
        inset_h = max(8, round(panel_h * INSET_FRACTION))
        inset_w = max(8, round(inset_h * zoom.w / zoom.h))
    right = box[0] + box[2] / 2 < panel_w / 2  # region on the left → inset on the right
    bottom = box[1] + box[3] / 2 < panel_h / 2
    inset_at = (panel_w - inset_w if right else 0, panel_h - inset_h if bottom else 0)
    layout = {"size": list(size), "panel_size": [panel_w, panel_h], "zoom": zoom.as_list(), "zoom_chosen": zoom.chosen, "panels": []}
    for index, (label, image) in enumerate(panels):
        column, row = index % columns, index // columns
        left, top = GAP + column * (panel_w + GAP), GAP + row * (panel_h + LABEL_HEIGHT + GAP)
        picture = _to_pil(image)
        crop = picture.crop((zoom.x, zoom.y, zoom.x + zoom.w, zoom.y + zoom.h)).resize((inset_w, inset_h), Image.Resampling.LANCZOS)
        figure.paste(picture.resize((panel_w, panel_h), Image.Resampling.LANCZOS), (left, top))
        zoom_box = [left + box[0], top + box[1], box[2], box[3]]
        inset = [left + inset_at[0], top + inset_at[1], inset_w, inset_h]
        figure.paste(crop, (inset[0], inset[1]))
        for x, y, w, h in (zoom_box, inset):
            draw.rectangle((x, y, x + w - 1, y + h - 1), outline=BOX_COLOUR, width=LINE)
        text_w = draw.textlength(label, font=font)
        draw.text((left + (panel_w - text_w) / 2, top + panel_h + 3), label, fill=(0, 0, 0), font=font)
        layout["panels"].append({"label": label, "box": [left, top, panel_w, panel_h], "zoom_box": zoom_box, "inset": inset})
    return figure, layout


def encode(figure, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "pdf":
        figure.save(buffer, "PDF", resolution=150.0)
    else:
        figure.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
