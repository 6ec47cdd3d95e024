"""Tiled inference (`fusekit.app.tiling`): a real DEV pair fused in small overlapping tiles equals the untiled
fusion, and `fuse` tiles large images for tileable models only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import pair_paths

from fusekit.app import tiling
from fusekit.app.train.degraded import pair_texts, text_features
from fusekit.io.images import read_image, to_grey
from fusekit.models import FUSION_MODELS
from fusekit.models.checkpoints import load_model

# Stated tolerance: tiles of 256 px overlapping by 96 px give the untiled output to within 0.01 grey levels
# (float rounding; the bundled model's reach is < 1/3 of the overlap and tiles sit on its 8-pixel grid).
TOLERANCE = 0.01 / 255


def _pair(task="ivf", where=("IVF", "RoadScene", "FLIR_06570")):
    path_a, path_b = pair_paths(*where)
    a, b = (to_grey(read_image(path)).astype(np.uint8) for path in (path_a, path_b))
    text = torch.from_numpy(text_features(pair_texts(a, b, task, where[2]), task))[None]
    return a.astype(np.float32) / 255, b.astype(np.float32) / 255, text


def test_tiled_equals_untiled_on_a_real_pair():
    a, b, text = _pair()
    model, _ = load_model("compact", None, "ivf")

    whole_image = {name: value[None] for name, value in model.whole_image_inputs(a, b).items()}  # as `fuse` passes it

    def run(x, y):
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x))[None, None],
                         torch.from_numpy(np.ascontiguousarray(y))[None, None], text, **whole_image)[0, 0].numpy()

    whole = run(a, b)
    assert a.shape[0] > 256 and a.shape[1] > 2 * 256  # several tiles each way, and a short last one
    tiled = tiling.fuse_tiled(run, a, b, tile=256, overlap=96)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() < TOLERANCE


def test_windows_cover_the_image_on_the_grid():
    for length in (100, 256, 257, 1000, 3000):
        starts = tiling.starts(length, 256, 96)
        assert starts[0] == 0 and all(s % tiling.GRID == 0 for s in starts)
        assert starts[-1] + 256 >= length or len(starts) == 1
        assert all(b - a <= 256 - 96 for a, b in zip(starts, starts[1:]))  # neighbours overlap by >= 96


def test_weights_blend_to_one_and_only_tileable_models_tile():
    ones = tiling.fuse_tiled(lambda x, y: np.ones_like(x), np.zeros((300, 700), np.float32), np.zeros((300, 700), np.float32), 128, 48)
    assert np.allclose(ones, 1.0)
    with pytest.raises(ValueError, match="multiple"):
        tiling.fuse_tiled(lambda x, y: x, ones, ones, tile=100, overlap=32)
    assert FUSION_MODELS.get("compact").tileable and not FUSION_MODELS.get("film").tileable


def test_a_model_that_blends_the_whole_image_tiles_its_layers_only(monkeypatch):
    """MEF's bundled model blends its exposures band by band over the whole image (`pyramid_blend`): `fuse` tiles
    what is local (its layers) and blends the stitched layers once, the same as the untiled fusion."""
    from fusekit.app.fuse import Fuser
    from fusekit.io.pairs import Item

    path_a, path_b = pair_paths("MEF", "MEFB", "Stream")
    fuser = Fuser("compact", "mef", colour="grey", device="cpu")
    assert fuser.module.blends_whole_image
    pair = fuser.load(Item("Stream", {"a": str(path_a), "b": str(path_b)}))
    whole = fuser.fuse([pair])[0]
    blended_tiles = []
    small_tiles = tiling.fuse_tiled

    def fuse_tiled(run, a, b):
        blended_tiles.append(a.shape)
        return small_tiles(run, a, b, tile=256, overlap=96)

    monkeypatch.setattr(tiling, "wanted", lambda spec, pairs: True)
    monkeypatch.setattr(tiling, "fuse_tiled", fuse_tiled)
    tiled = fuser.fuse([pair])[0]
    assert blended_tiles == [pair.a.shape] and min(pair.a.shape) > 256 * 1.5
    assert np.abs(tiled.astype(np.int16) - whole.astype(np.int16)).max() <= 1  # 8-bit rounding of a 0.01-level difference
