"""Laplacian-pyramid blending in torch (how MEF's compact model blends) and Mertens exposure fusion built on it (its
intensity target): the numpy baseline's arithmetic on batches, so a training crop's target is the baseline's
fusion of that crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import pair_paths

from fusekit.io.images import read_image, to_grey
from fusekit.models.baselines.mertens import exposure_fusion as mertens_numpy
from fusekit.models.compact_loss import compact_loss
from fusekit.models.pyramid_blend import exposure_fusion, pyramid_blend

TOLERANCE = 2e-6  # float32 summation order; the two implementations are the same arithmetic


def _grey(path) -> np.ndarray:
    return to_grey(read_image(path)).astype(np.float32) / 255


@pytest.mark.parametrize("name", ["Lamp", "Stream"])
def test_matches_the_mertens_baseline_on_real_exposures(name):
    over, under = (_grey(path) for path in pair_paths("MEF", "MEFB", name))
    # the whole frame, a training crop, and odd sizes down to the smallest (the pyramid's border cases)
    for top, left, height, width in [(0, 0, *over.shape), (100, 150, 96, 96), (7, 3, 95, 97), (0, 0, 7, 5), (0, 0, 1, 3)]:
        a, b = (x[top:top + height, left:left + width].copy() for x in (over, under))
        expected = mertens_numpy([a, b])
        got = exposure_fusion(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])[0, 0].numpy()
        assert np.abs(got - expected).max() < TOLERANCE, (name, height, width)


def test_a_batch_is_fused_sample_by_sample():
    over, under = (_grey(path)[:64, :80] for path in pair_paths("MEF", "MEFB", "Chair"))
    a = torch.from_numpy(np.stack([over, under]))[:, None]
    b = torch.from_numpy(np.stack([under, over * 0.5]))[:, None]
    batch = exposure_fusion(a, b)
    for index in range(2):
        alone = exposure_fusion(a[index: index + 1], b[index: index + 1])
        assert torch.allclose(batch[index: index + 1], alone, atol=1e-7)


def test_the_mef_loss_asks_for_the_exposure_fusion():
    """The intensity term is zero for the Mertens fusion of the sources and grows for the plain mean, which the
    earlier target drifted towards (washed-out skies)."""
    over, under = (_grey(path)[:96, :128] for path in pair_paths("MEF", "MEFB", "Lamp"))
    a, b = torch.from_numpy(over)[None, None], torch.from_numpy(under)[None, None]
    target = exposure_fusion(a, b).clamp(0, 1)
    _, at_target = compact_loss({"fused": target}, {"a": a, "b": b}, "mef")
    _, at_mean = compact_loss({"fused": (a + b) / 2}, {"a": a, "b": b}, "mef")
    assert at_target["int"] < 1e-7
    assert at_mean["int"] > 0.02


def test_a_constant_weight_is_the_per_pixel_blend_and_flat_sources_take_the_coarsest_weight():
    """The pyramid of a constant weight is that constant, so the blend is then w·A + (1 − w)·B exactly; two flat
    sources have no bands, so their blend is the weight's coarsest level everywhere: the blend is global, which
    is why a large image is blended once, after its tiles (`CompactFusion.blend_layers_array`)."""
    over, under = (_grey(path)[:96, :128] for path in pair_paths("MEF", "MEFB", "Lamp"))
    a, b = torch.from_numpy(over)[None, None], torch.from_numpy(under)[None, None]
    assert torch.allclose(pyramid_blend(a, b, torch.full_like(a, 0.3)), 0.3 * a + 0.7 * b, atol=1e-5)
    step = torch.zeros(1, 1, 64, 64)
    step[..., 32:] = 1.0
    fused = pyramid_blend(torch.ones(1, 1, 64, 64), torch.zeros(1, 1, 64, 64), step)
    assert float(fused.max() - fused.min()) < 1e-6 and 0.1 < float(fused.mean()) < 0.9
