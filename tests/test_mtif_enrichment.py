"""MTIF's semantic-driven visual enrichment: five crops, inside the image, centred on the most salient region."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import pair_paths
from numpy.lib.stride_tricks import sliding_window_view

from fusekit.io.images import read_image, to_grey
from fusekit.models.enrichment import EnrichmentConfig, crop_boxes, enrich, pair_saliency, spectral_residual
from fusekit.models import augment


def grey_pair(task: str, dataset: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    return tuple((to_grey(read_image(path)) / 255.0).astype(np.float32) for path in pair_paths(task, dataset, name))


def test_five_crops_centred_on_the_salient_region():
    """Real content in one window of an otherwise flat pair: the centre crop sits on that window."""
    a, b = grey_pair("MEF", "MEFB", "AirBellowsGap")
    height, width = a.shape
    top, left, size = 200, 330, 96  # a window in the lower right
    flat_a, flat_b = np.full_like(a, a.mean()), np.full_like(b, b.mean())
    for flat, source in ((flat_a, a), (flat_b, b)):
        flat[top:top + size, left:left + size] = source[top:top + size, left:left + size]
    text = np.zeros((6, 768), np.float32)
    crops = augment.apply(["mtif-enrichment"], {"a": flat_a, "b": flat_b, "text": text}, np.random.default_rng(0))

    assert len(crops) == 5
    boxes = crop_boxes(pair_saliency(flat_a, flat_b, EnrichmentConfig()), EnrichmentConfig())
    crop_h, crop_w = round(height * 0.5), round(width * 0.5)
    for (y, x, h, w), sample in zip(boxes, crops):
        assert (h, w) == (crop_h, crop_w)
        assert 0 <= y and y + h <= height and 0 <= x and x + w <= width
        assert np.array_equal(sample["a"], flat_a[y:y + h, x:x + w])
        assert np.array_equal(sample["b"], flat_b[y:y + h, x:x + w])
        assert sample["text"] is text  # the pair's text guides every crop
    y, x, h, w = boxes[0]
    salient_y, salient_x = top + size / 2, left + size / 2
    assert abs(y + h / 2 - salient_y) <= h / 4 and abs(x + w / 2 - salient_x) <= w / 4
    assert len({box[:2] for box in boxes}) == 5  # four distinct peripheral crops around the centre


def test_centre_crop_is_the_window_of_largest_saliency():
    """On an untouched real pair, against a brute-force search over every window."""
    a, b = grey_pair("MFF", "MFIFB", "savic_03")
    config = EnrichmentConfig(crop_fraction=0.4)
    saliency = pair_saliency(a, b, config)
    y, x, h, w = crop_boxes(saliency, config)[0]
    sums = sliding_window_view(saliency.astype(np.float64), (h, w)).sum(axis=(-1, -2))
    assert sums[y, x] == pytest.approx(sums.max(), rel=1e-9)


def test_spectral_residual_peaks_at_one_and_is_uniform_on_a_flat_image():
    a, _ = grey_pair("IVF", "MSRS", "00040N")
    saliency = spectral_residual(a)
    assert saliency.shape == a.shape and saliency.max() == pytest.approx(1.0) and saliency.min() >= 0
    flat = spectral_residual(np.full((40, 60), 0.3, np.float32))
    assert flat.max() - flat.min() < 0.01  # nothing stands out


def test_peripheral_crops_follow_the_configured_shift():
    saliency = np.zeros((100, 200))
    saliency[40:60, 90:110] = 1
    boxes = crop_boxes(saliency, EnrichmentConfig(crop_fraction=0.2, periphery_shift=0.5))
    (cy, cx, h, w), *periphery = boxes
    assert (h, w) == (20, 40)
    assert {(y - cy, x - cx) for y, x, _, _ in periphery} == {(-10, -20), (-10, 20), (10, -20), (10, 20)}
    cross = crop_boxes(saliency, EnrichmentConfig(crop_fraction=0.2, periphery="cross"))
    assert cross[0] == boxes[0]
    assert {(y - cy, x - cx) for y, x, _, _ in cross[1:]} == {(-10, 0), (10, 0), (0, -20), (0, 20)}
    assert len(enrich({"a": saliency.astype(np.float32), "b": saliency.astype(np.float32)})) == 5
