"""FILM's ablation Exp. I (w/o text, `FILMConfig(use_text=False)`): no cross-attention, the text is ignored, and
the default configuration stays the released network (its golden tests are in test_film.py)."""

from __future__ import annotations

import torch

from conftest import pair_paths


def test_no_text_variant_ignores_the_text_and_has_no_cross_attention():
    from fusekit.io.images import read_image
    from fusekit.models.film import FILM, FILMConfig

    assert FILMConfig().use_text is True
    torch.manual_seed(0)
    model = FILM(FILMConfig(use_text=False)).eval()
    names = [name for name, _ in model.named_parameters()]
    assert not any("cross_attention" in name or "text_proj" in name for name in names)
    assert any("image_only" in name for name in names)
    grey = [read_image(path) for path in pair_paths("IVF", "TNO", "10")]
    a, b = (torch.from_numpy(g if g.ndim == 2 else g.mean(axis=2)).float()[None, None, :48, :64] / 255 for g in grey)
    with torch.inference_mode():
        first = model(a, b, torch.randn(1, 7, 768))
        second = model(a, b, torch.zeros(1, 3, 16))
    assert torch.equal(first, second) and first.shape == (1, 1, 48, 64)
    assert 0 < float(first.min()) and float(first.max()) < 1 and float(first.std()) > 0
    # The released network does depend on the text.
    full = FILM().eval()
    with torch.inference_mode():
        assert not torch.equal(full(a, b, torch.randn(1, 7, 768)), full(a, b, torch.randn(1, 7, 768)))
