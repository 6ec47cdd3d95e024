"""Image I/O on real DEV-set images and on the odd files users actually have (16-bit, alpha, truncated)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, pair_paths
from fusekit.errors import FusekitError
from fusekit.io import images


def test_reads_grey_and_colour_pairs_at_their_own_size():
    ir, vi = pair_paths("IVF", "MSRS", "00040N")
    a, b = images.read_image(ir), images.read_image(vi)
    assert a.dtype == np.uint8 and a.shape == (480, 640)
    assert b.dtype == np.uint8 and b.shape == (480, 640, 3)
    assert np.array_equal(b, np.asarray(Image.open(vi).convert("RGB")))


def test_grey_conversion_is_rounded_bt601_in_float():
    vi = images.read_image(pair_paths("IVF", "MSRS", "00040N")[1])
    rgb = vi.astype(np.float64)
    expected = np.round(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])
    grey = images.to_grey(vi)
    assert grey.dtype == np.float32
    # float32 arithmetic may land on the other side of .5 for a handful of pixels, never further away.
    assert np.abs(grey - expected).max() <= 1
    assert np.mean(grey != expected) < 1e-3
    assert np.array_equal(images.to_grey(images.read_image(pair_paths("IVF", "MSRS", "00040N")[0])),
                          images.read_image(pair_paths("IVF", "MSRS", "00040N")[0]).astype(np.float32))


def test_ycbcr_round_trip_and_luma_matches_grey():
    rgb = images.to_float(images.read_image(pair_paths("MEF", "MEFB", "Chair")[0]))
    ycc = images.rgb_to_ycbcr(rgb)
    assert np.allclose(ycc[..., 0], images.to_grey(rgb, rounded=False), atol=1e-5)
    assert np.abs(images.ycbcr_to_rgb(ycc) - rgb).max() < 1e-5
    merged = images.merge_luma(ycc[..., 0], ycc[..., 1:])
    assert np.abs(merged - rgb).max() < 1e-5


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("TIFF", ".tif"), ("BMP", ".bmp"), ("PNG", ".png")])
def test_reads_every_supported_format(tmp_path, fmt, suffix):
    source = np.asarray(Image.open(pair_paths("MFF", "MFIFB", "savic_03")[0]).convert("RGB"))
    path = tmp_path / f"x{suffix}"
    Image.fromarray(source).save(path, format=fmt)
    decoded = images.read_image(path)
    assert decoded.shape == source.shape
    if fmt != "JPEG":
        assert np.array_equal(decoded, source)


def test_sixteen_bit_round_trip(tmp_path):
    grey = images.read_image(pair_paths("MIF", "Harvard", "CT_2013")[0]).astype(np.uint16) * 257
    path = tmp_path / "deep.png"
    images.write_image(path, grey)
    back = images.read_image(path)
    assert back.dtype == np.uint16 and np.array_equal(back, grey)
    assert np.allclose(images.to_float(back), grey / 65535.0)
    colour = images.read_image(pair_paths("MFF", "MFIFB", "savic_03")[0]).astype(np.uint16) * 257 + 3
    images.write_image(path, colour)
    decoded = images.read_image(path)
    assert decoded.shape == colour.shape
    # Pillow decodes 16-bit colour PNGs to 8 bits per channel; the file itself keeps 16 (checked with the header).
    assert path.read_bytes()[24] == 16


def test_alpha_is_dropped_with_a_warning(tmp_path, capsys):
    rgb = np.asarray(Image.open(pair_paths("MFF", "MFIFB", "savic_03")[0]).convert("RGB"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    decoded = images.read_image(path)
    assert np.array_equal(decoded, rgb)
    assert "alpha channel dropped" in capsys.readouterr().err


def test_truncated_and_non_image_files_are_user_errors(tmp_path):
    data = pair_paths("IVF", "MSRS", "00040N")[0].read_bytes()
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FusekitError, match="truncated"):
        images.read_image(truncated)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(FusekitError, match="not a readable image"):
        images.read_image(text)
    with pytest.raises(FusekitError, match="not found"):
        images.read_image(tmp_path / "missing.png")


def test_write_is_atomic_and_png_only(tmp_path):
    target = tmp_path / "out.png"
    images.write_image(target, np.zeros((4, 5), np.float32))
    assert images.read_image(target).shape == (4, 5)
    with pytest.raises(FusekitError, match="PNG"):
        images.write_image(tmp_path / "out.jpg", np.zeros((4, 5), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_encode_png_matches_pillow_decode():
    grey = images.read_image(pair_paths("MIF", "Harvard", "CT_2013")[0])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(images.encode_png(grey)))), grey)
