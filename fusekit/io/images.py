"""Reading and writing images, grey conversion and the YCbCr split used for colour output.

Images are numpy arrays in their file's own range: uint8 or uint16, shape [H, W] (grey) or [H, W, 3] (RGB).
Alpha is dropped with a warning. Pillow decodes everything except 16-bit colour PNGs, which it would truncate to
8 bits: those are read at full depth with pypng (and written by fusekit's own PNG encoder below); a 16-bit colour
TIFF, which neither reads at full depth, is refused. `to_grey` follows the metrics reference exactly (BT.601 weights in float32,
rounded to the nearest integer), which is also how the released FILM code reads its inputs.
"""

from __future__ import annotations

import io as _io
import os
import warnings
from pathlib import Path

import numpy as np

from .. import log
from ..errors import FusekitError
from .atomic import atomic_write, is_stdio, read_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# BT.601 luma weights, as OpenCV's COLOR_BGR2GRAY and the metric reference use them.
LUMA = (0.299, 0.587, 0.114)


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file (``-`` reads stdin) into uint8/uint16 [H, W] or [H, W, 3]."""
    from PIL import Image, UnidentifiedImageError

    data = read_bytes(path, "image")
    name = "stdin" if is_stdio(path) else str(path)
    if _is_png16_colour(data):
        return _read_png16(data, name)
    try:
        with warnings.catch_warnings(record=True) as caught, Image.open(_io.BytesIO(data)) as image:
            warnings.simplefilter("always")
            _refuse_tiff16_colour(image, name)
            image.load()
            array = _pil_to_array(image, name)
        for warning in caught:  # Pillow's own warnings (damaged tags, truncated EXIF) as fusekit's one-line warnings
            log.warn(f"{name}: {str(warning.message).strip()}")
    except UnidentifiedImageError as exc:
        raise FusekitError(f"{name} is not a readable image", "use PNG, JPEG, TIFF or BMP") from exc
    except Image.DecompressionBombError as exc:
        raise _too_large(name, exc) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise FusekitError(f"{name} is damaged or truncated ({exc})", "re-export or re-download the image") from exc
    if array.size == 0:
        raise FusekitError(f"{name} has no pixels", "check the file")
    return array


def _is_png16_colour(data: bytes) -> bool:
    """A PNG whose IHDR says 16 bits per sample with colour or alpha (colour types 2, 4, 6)."""
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 26 and data[24] == 16 and data[25] in (2, 4, 6)


def _read_png16(data: bytes, name: str) -> np.ndarray:
    """A 16-bit colour (or grey + alpha) PNG at full depth, decoded by pypng: uint16 [H, W, 3] (or [H, W])."""
    import png

    damaged = "re-export or re-download the image"
    try:
        width, height, rows, info = png.Reader(bytes=data).asDirect()
    except Exception as exc:  # pypng's own errors, zlib's, struct's ...: all mean a damaged file
        raise FusekitError(f"{name} is damaged or truncated ({exc})", damaged) from exc
    if width * height > _max_pixels():
        raise _too_large(name, f"{width}x{height}")
    try:
        array = np.vstack([np.asarray(row, np.uint16) for row in rows])
    except Exception as exc:  # rows decode lazily: a damaged stream fails here (IndexError, struct.error, ...)
        raise FusekitError(f"{name} is damaged or truncated ({exc or type(exc).__name__})", damaged) from exc
    if array.shape[0] != height:
        raise FusekitError(f"{name} is truncated", damaged)
    planes = info["planes"]
    array = array.reshape(height, width, planes)
    if info.get("alpha"):
        log.warn(f"{name}: alpha channel dropped")
        array = array[..., :-1]
    return np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array)


def _max_pixels() -> int:
    """Pillow's decompression-bomb limit (twice its warning size), applied to every decoder."""
    from PIL import Image

    return 2 * int(Image.MAX_IMAGE_PIXELS or 2**62)


def _too_large(name: str, why) -> FusekitError:
    return FusekitError(f"{name} is too large to decode ({why})", "a damaged header, or an image to split into tiles first")


def _refuse_tiff16_colour(image, name: str) -> None:
    """Pillow reads a 16-bit colour TIFF as 8-bit RGB: refuse it rather than lose the low bits silently."""
    bits = getattr(image, "tag_v2", {}).get(258) if image.format == "TIFF" else None
    if isinstance(bits, tuple) and len(bits) >= 3 and max(bits) > 8:
        raise FusekitError(f"{name}: {max(bits)}-bit colour TIFF cannot be read at full depth", "convert it to a 16-bit PNG")


def _pil_to_array(image, name: str) -> np.ndarray:
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        log.warn(f"{name}: alpha channel dropped")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image, dtype=np.uint16)
    if mode == "I":
        array = np.asarray(image)
        if array.min() < 0 or array.max() > 65535:
            raise FusekitError(f"{name}: 32-bit integer pixels outside 0–65535", "convert it to 8- or 16-bit first")
        return array.astype(np.uint16)
    if mode == "F":
        raise FusekitError(f"{name}: floating-point images are not supported", "convert it to 8- or 16-bit first")
    if mode in ("LA",):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode == "RGBA":
        return np.asarray(image)[..., :3].copy()
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def max_value(image: np.ndarray) -> float:
    """The white level of an image's dtype: 255 for uint8, 65535 for uint16, 1 for float arrays."""
    if image.dtype == np.uint8:
        return 255.0
    if image.dtype == np.uint16:
        return 65535.0
    return 1.0


def to_float(image: np.ndarray) -> np.ndarray:
    """float32 in [0, 1], same shape."""
    return image.astype(np.float32) / np.float32(max_value(image))


def to_grey(image: np.ndarray, rounded: bool = True) -> np.ndarray:
    """float32 grey on the image's own scale (0–255 for 8-bit).

    Colour: ``0.299 R + 0.587 G + 0.114 B`` in float32, rounded to the nearest integer when `rounded` (as the
    metric reference and the released FILM code do). Grey images pass through as float32.
    """
    if image.ndim == 2:
        return image.astype(np.float32)
    # OpenCV's float32 BGR2GRAY, operation for operation: G·wG rounded to float32, then two fused multiply-adds
    # (B, then R). Emulated in float64, where each step is exact before its single rounding to float32; this
    # reproduces cv2 bit for bit, so the rounded grey matches the reference at the x.5 ties a plain sum gets wrong.
    rgb = image.astype(np.float64)
    r, g, b = (np.float64(np.float32(weight)) for weight in LUMA)
    grey = (rgb[..., 1] * g).astype(np.float32).astype(np.float64)
    grey = (rgb[..., 2] * b + grey).astype(np.float32).astype(np.float64)
    grey = (rgb[..., 0] * r + grey).astype(np.float32)
    return np.round(grey) if rounded else grey


# Full-range BT.601 (JPEG) YCbCr on [0, 1] data, the convention of fusion code that fuses Y and re-attaches chroma.
_RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] float RGB in [0, 1] → [H, W, 3] float32 YCbCr with Cb, Cr centred on 0.5."""
    ycc = rgb.astype(np.float32) @ _RGB_TO_YCBCR.T.astype(np.float32)
    ycc[..., 1:] += np.float32(0.5)
    return ycc


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_ycbcr`, clipped to [0, 1]."""
    centred = ycc.astype(np.float32).copy()
    centred[..., 1:] -= np.float32(0.5)
    return np.clip(centred @ _YCBCR_TO_RGB.T.astype(np.float32), 0.0, 1.0)


def merge_luma(y: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """A fused luma [H, W] in [0, 1] plus a chroma [H, W, 2] (Cb, Cr) → RGB [H, W, 3] in [0, 1]."""
    return ycbcr_to_rgb(np.concatenate([y[..., None].astype(np.float32), chroma.astype(np.float32)], axis=-1))


def require_finite(image: np.ndarray, what: str = "the fused image") -> None:
    """Refuse NaN or infinite pixels: cast to integers they turn silently into black (or arbitrary) pixels."""
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise FusekitError(f"{what} has NaN or infinite pixels", "the model's weights or inputs are broken; check --weights")


def from_float(image: np.ndarray, bits: int = 8) -> np.ndarray:
    """[0, 1] floats → uint8 or uint16, rounded to nearest; non-finite pixels are refused."""
    if bits not in (8, 16):
        raise FusekitError(f"unsupported bit depth {bits}", "use 8 or 16")
    require_finite(image)
    top = 255.0 if bits == 8 else 65535.0
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.round(np.clip(image, 0.0, 1.0) * top).astype(dtype)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes for a uint8/uint16 [H, W] or [H, W, 3] array."""
    if image.dtype == np.uint16:
        return _encode_png16(image)
    if image.dtype != np.uint8:
        raise TypeError(f"encode_png needs uint8 or uint16 pixels, got {image.dtype}")
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=".png")


def _encode_png16(image: np.ndarray) -> bytes:
    """16-bit PNG (grey or RGB), written directly: Pillow cannot save 16-bit colour."""
    import struct
    import zlib

    height, width = image.shape[:2]
    colour_type = 2 if image.ndim == 3 else 0
    rows = np.ascontiguousarray(image.astype(">u2")).reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 per row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a PNG atomically (``-`` is stdout). `image` is uint8/uint16, or float in [0, 1] (saved as 8-bit)."""
    if image.dtype not in (np.uint8, np.uint16):
        image = from_float(image, 8)
    suffix = Path(str(path)).suffix.lower()
    if not is_stdio(path) and suffix not in ("", ".png"):
        raise FusekitError(f"cannot write {path}: fusekit writes PNG", "give the output a .png name")
    with atomic_write(path) as stream:
        stream.write(encode_png(image))


# ------------------------------------------------------------------------------------------ model inputs


def grey_input(image: np.ndarray) -> np.ndarray:
    """A fusion model's grey input: float32 [H, W] in [0, 1], BT.601 luma rounded to integer levels first (the
    released FILM convention, and how the metrics read images) — the same for `fuse` and `train`."""
    return to_grey(image) / np.float32(max_value(image))


def rgb_input(image: np.ndarray) -> np.ndarray:
    """An rgb fusion model's input: float32 [H, W, 3] in [0, 1] (a grey image repeated)."""
    image = to_float(image)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def rgb_of(image: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] from any fusekit image array (grey repeated, 16-bit scaled): what the vision-language
    models take."""
    if image.dtype == np.uint16:
        image = (image / 257.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image
