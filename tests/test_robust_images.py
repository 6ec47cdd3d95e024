"""Issue 17 item 6: 16-bit colour images are read and written at full depth (pypng reads, fusekit's encoder writes),
checked against OpenCV's decoder; a 16-bit colour TIFF, which no installed reader keeps at full depth, is refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import assert_user_error, pair_paths, run_fusekit

from fusekit.errors import FusekitError
from fusekit.io.images import encode_png, read_image, write_image


def _deep_colour(path) -> np.ndarray:
    """A real DEV image spread to 16 bits with low bits set (so an 8-bit read cannot pass)."""
    rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.uint16)
    return rgb * 257 + np.arange(rgb.size, dtype=np.uint16).reshape(rgb.shape) % 200


def test_16_bit_colour_round_trip_keeps_every_bit(tmp_path):
    image = _deep_colour(pair_paths("IVF", "MSRS", "00028N")[1])
    path = tmp_path / "deep.png"
    write_image(path, image)
    back = read_image(path)
    assert back.dtype == np.uint16 and back.shape == image.shape
    assert np.array_equal(back, image)
    opencv = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert np.array_equal(opencv, image)  # another decoder reads the same 16-bit pixels fusekit wrote


def test_16_bit_colour_png_written_by_another_encoder_reads_at_full_depth(tmp_path):
    image = _deep_colour(pair_paths("IVF", "MSRS", "00028N")[1])
    path = tmp_path / "opencv.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # filtered rows, unlike fusekit's encoder
    assert np.array_equal(read_image(path), image)
    alpha = np.dstack([image, np.full(image.shape[:2], 65535, np.uint16)])
    cv2.imwrite(str(tmp_path / "alpha.png"), cv2.cvtColor(alpha, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(read_image(tmp_path / "alpha.png"), image)


def test_16_bit_colour_tiff_is_refused_not_truncated(tmp_path):
    path = tmp_path / "deep.tif"
    cv2.imwrite(str(path), np.full((4, 5, 3), 1000, np.uint16))
    with pytest.raises(FusekitError, match="16-bit colour TIFF"):
        read_image(path)


def test_a_truncated_16_bit_colour_png_is_one_clear_error(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(encode_png(np.full((40, 30, 3), 4000, np.uint16))[:60])
    with pytest.raises(FusekitError, match="damaged or truncated"):
        read_image(path)


def test_fuse_of_16_bit_colour_sources_writes_and_reads_back_16_bit_colour(tmp_path):
    ir, vi = pair_paths("IVF", "MSRS", "00028N")
    deep_ir, deep_vi = tmp_path / "ir.png", tmp_path / "vi.png"
    write_image(deep_ir, read_image(ir).astype(np.uint16) * 257)
    write_image(deep_vi, _deep_colour(vi))
    out = tmp_path / "fused.png"
    result = run_fusekit("fuse", deep_ir, deep_vi, "--task", "ivf", "--model", "gff", "-o", out)
    assert result.returncode == 0, result.stderr.decode()
    fused = read_image(out)
    assert fused.dtype == np.uint16 and fused.ndim == 3
    assert np.any(fused % 257 != 0)  # low bits present: not an 8-bit image scaled up
    scored = run_fusekit("metrics", out, deep_ir, deep_vi, "--metrics", "EN")
    assert scored.returncode == 0, scored.stderr.decode()


def test_a_16_bit_colour_tiff_in_fuse_is_one_line(tmp_path):
    ir, vi = pair_paths("IVF", "MSRS", "00028N")
    deep = tmp_path / "vi.tif"
    cv2.imwrite(str(deep), cv2.cvtColor(_deep_colour(vi), cv2.COLOR_RGB2BGR))
    result = run_fusekit("fuse", ir, deep, "--task", "ivf", "--model", "gff", "-o", tmp_path / "f.png")
    assert_user_error(result, "fuse", contains="convert it to a 16-bit PNG")
