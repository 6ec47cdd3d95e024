"""fusekit's compact text-guided model: the network on tiny hand-written configs, and the bundled weights of every
task loading and fusing real DEV pairs with real offline text features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import pair_paths, run_fusekit

from fusekit.guidance.describe import describe_pair
from fusekit.io.images import read_image, to_grey
from fusekit.metrics import compute
from fusekit.models import FUSION_MODELS
from fusekit.models.checkpoints import load_model
from fusekit.models.compact import _SPREAD_FLOOR, CompactConfig, CompactFusion
from fusekit.models.degrade import CORRECTED_KINDS
from fusekit.guidance.text import encode_descriptions

TINY = CompactConfig(text_dim=16, channels=4, context_channels=8, heads=2)
# one small real pair per task (A, B in the task's order)
PAIRS = {"ivf": ("IVF", "TNO", "18"), "mif": ("MIF", "Harvard", "CT_2013"), "mef": ("MEF", "MEFB", "Chair"),
         "mff": ("MFF", "MFIFB", "stand_02")}


def _randomise_head(model: CompactFusion) -> None:
    """Give the zero-initialised last layer weights, so the output depends on everything before it."""
    torch.manual_seed(1)
    torch.nn.init.normal_(model.decode[-1].weight, std=0.5)


@pytest.mark.parametrize("size", [(5, 7), (37, 53), (64, 48)])
def test_any_input_size(size):
    torch.manual_seed(0)
    model = CompactFusion(TINY).eval()
    _randomise_head(model)
    a, b = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    with torch.no_grad():
        fused = model(a, b, text=torch.randn(2, 11, 16))
    assert fused.shape == (2, 1, *size)
    assert fused.min() >= 0 and fused.max() <= 1


def test_untrained_model_outputs_the_mean():
    model = CompactFusion(TINY).eval()
    a, b = torch.rand(1, 1, 20, 30), torch.rand(1, 1, 20, 30)
    with torch.no_grad():
        fused = model(a, b, text=torch.randn(1, 4, 16))
    assert torch.allclose(fused, (a + b) / 2, atol=1e-6)


def test_text_steers_the_output():
    torch.manual_seed(0)
    model = CompactFusion(TINY).eval()
    _randomise_head(model)
    a, b = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        first = model(a, b, text=torch.randn(1, 6, 16))
        second = model(a, b, text=torch.randn(1, 9, 16))  # another text, another token count
    assert (first - second).abs().max() > 1e-4


def test_config_is_checked():
    with pytest.raises(ValueError, match="heads"):
        CompactFusion(CompactConfig(context_channels=10, heads=4))
    with pytest.raises(ValueError, match="power of two"):
        CompactFusion(CompactConfig(downsample=6))


def test_spec_contract():
    spec = FUSION_MODELS.get("compact")
    assert spec.kind == "learned" and spec.guidance == ("text",)
    assert spec.text_encoder == "offline" and spec.text_dim == 768
    assert set(spec.tasks) == {"ivf", "mif", "mef", "mff"}


# ------------------------------------------------------------------------------------------- bundled weights


def _real_inputs(task: str):
    path_a, path_b = pair_paths(*PAIRS[task])
    tensors, _ = encode_descriptions(describe_pair(path_a, path_b, task, backends=("stats",)), "offline")
    image_a, image_b = read_image(path_a), read_image(path_b)
    grey = [torch.from_numpy(to_grey(image) / np.float32(255))[None, None] for image in (image_a, image_b)]
    return grey[0], grey[1], tensors["text"][None], image_a, image_b


@pytest.mark.parametrize("task", ["ivf", "mif", "mef", "mff"])
def test_bundled_weights_load_and_fuse(task):
    spec = FUSION_MODELS.get("compact")
    path = spec.bundled_weights(task)
    assert path is not None, f"no bundled weights for {task}"
    assert path.stat().st_size < 4 * 2**20  # a few MB at most
    model, metadata = load_model("compact", None, task)
    assert metadata["task"] == task and metadata["text_encoder"] == "offline" and metadata["text_dim"] == "768"
    assert metadata["train_command"].startswith("fusekit train --model compact")
    a, b, text, image_a, image_b = _real_inputs(task)
    with torch.no_grad():
        fused = model(a, b, text=text)
    assert fused.shape == a.shape and 0 <= fused.min() and fused.max() <= 1
    # a trained model is not the untrained mean, and it carries both sources' structure (Qabf well above 0)
    assert (fused - (a + b) / 2).abs().mean() > 1e-3
    values = compute(fused[0, 0].numpy() * 255, image_a, image_b, metrics=["Qabf"])
    assert values["Qabf"] > 0.3


def test_default_fuse_runs_the_bundled_model(tmp_path):
    """describe → encode-text → fuse (no --model: the bundled compact) through the real CLI, and plain
    `fuse A B --task T`."""
    path_a, path_b = pair_paths(*PAIRS["mif"])
    described = run_fusekit("describe", path_a, path_b, "--task", "mif")
    assert described.returncode == 0, described.stderr.decode()
    text = tmp_path / "pair.safetensors"
    encoded = run_fusekit("encode-text", "-", "-o", text, input=described.stdout)
    assert encoded.returncode == 0, encoded.stderr.decode()
    out = tmp_path / "fused.png"
    fused = run_fusekit("fuse", path_a, path_b, "--task", "mif", "--text", text, "-o", out)
    assert fused.returncode == 0, fused.stderr.decode()
    assert read_image(out).shape[:2] == read_image(path_a).shape[:2]
    # without --text the runner makes the same offline features itself: same bytes
    plain = tmp_path / "plain.png"
    result = run_fusekit("fuse", path_a, path_b, "--task", "mif", "-o", plain)
    assert result.returncode == 0, result.stderr.decode()
    assert plain.read_bytes() == out.read_bytes()


def test_global_level_is_the_whole_images_mean_and_reaches_tiles():
    """With `global_level`, the restorers read each source's whole-image mean: computed from the input when none is
    given, and what `whole_image_inputs` hands every tile of a large image (so a tile is corrected as the whole)."""
    torch.manual_seed(0)
    model = CompactFusion(CompactConfig(global_level=True)).eval()
    for restorer in model.restore:  # a restorer that uses the level (an untrained one is the identity)
        torch.nn.init.normal_(restorer.out.weight, std=0.1)
    a, b, text = torch.rand(1, 1, 48, 64), torch.rand(1, 1, 48, 64) * 0.5, torch.randn(1, 12, 768)
    levels = model.whole_image_inputs(a[0, 0].numpy(), b[0, 0].numpy())["levels"][None]
    assert torch.allclose(levels, torch.tensor([[a.mean(), b.mean()]]), atol=1e-7)
    with torch.no_grad():
        assert torch.allclose(model(a, b, text), model(a, b, text, levels=levels), atol=1e-6)
        assert (model(a, b, text) - model(a, b, text, levels=levels + 0.2)).abs().max() > 1e-3
    assert CompactFusion(CompactConfig()).whole_image_inputs(a, b) == {}


def test_global_spread_is_the_whole_images_contrast_and_undoes_a_squeeze():
    """With `global_spread`, each restorer reads the other source's whole-image standard deviation over its own:
    computed from the input when none is given, handed to every tile by `whole_image_inputs`, and its term
    c₇·(r − 1)·(x − μ) with c₇ = 1 stretches a frame squeezed around its mean back to the other frame's contrast
    exactly (MFF: two focus settings of one scene keep one contrast)."""
    torch.manual_seed(0)
    model = CompactFusion(CompactConfig(text_dim=16, global_level=True, global_spread=True)).eval()
    assert model.whole_image_names == ("levels", "spreads")
    with pytest.raises(ValueError, match="global_level"):
        CompactFusion(CompactConfig(global_spread=True))
    path_a, path_b = pair_paths("MFF", "MFIFB", "stand_02")
    clean = torch.from_numpy(to_grey(read_image(path_a)).astype(np.float32) / 255)[None, None]
    other = torch.from_numpy(to_grey(read_image(path_b)).astype(np.float32) / 255)[None, None]
    mean = clean.mean()
    squeezed = mean + 0.1 * (clean - mean)
    whole = model.whole_image_inputs(squeezed[0, 0].numpy(), clean[0, 0].numpy())
    assert torch.allclose(whole["spreads"], torch.tensor([squeezed.std(correction=0), clean.std(correction=0)]), atol=1e-6)
    low_contrast = CORRECTED_KINDS.index("low-contrast")
    restorer = model.restore[0]
    with torch.no_grad():  # the low-contrast expert: c₇ = 1, every other map 0
        restorer.out.bias[low_contrast * restorer.terms + 6] = 1.0
        findings = torch.full((1, len(CORRECTED_KINDS)), -30.0)
        findings[0, low_contrast] = 30.0
        text = torch.zeros(1, model.config.text_hidden)
        levels, spreads = whole["levels"][None], whole["spreads"][None]

        def restore(reference):  # A restored with `reference`'s spread as the other source's
            ratio = (reference.std(correction=0) + _SPREAD_FLOOR) / (squeezed.std(correction=0) + _SPREAD_FLOOR)
            return model.correct(squeezed, 0, text, findings, levels[:, :1, None, None], ratio.view(1, 1, 1, 1))

        assert (squeezed - clean).abs().mean() > 0.05
        assert (restore(clean) - clean).abs().max() < 2e-3  # exact but for the spreads' floor
        assert (restore(other) - clean).abs().mean() < 0.01  # the frames' spreads differ by their focus only
        # in the whole network: the spreads it computes itself are the ones a tile is handed
        text_tokens = torch.randn(1, 9, 16)
        assert torch.allclose(model(squeezed, clean, text_tokens), model(squeezed, clean, text_tokens, levels=levels, spreads=spreads), atol=1e-6)
        assert (model(squeezed, clean, text_tokens) - model(squeezed, clean, text_tokens, levels=levels, spreads=spreads * torch.tensor([[2.0, 1.0]]))).abs().max() > 1e-3


def test_a_text_blind_fusion_core_leaves_the_text_to_the_restorers():
    """With `fusion_reads_text` false the text changes the fusion only through what the restorers correct: a text
    that names nothing (every finding probability ~0, the restorers the identity) fuses as any other such text,
    and the core's text layers are not built at all. With it true (the default) the same texts give another result."""
    a, b = torch.rand(1, 1, 32, 40), torch.rand(1, 1, 32, 40)
    texts = torch.randn(1, 6, 16), torch.randn(1, 9, 16)
    outputs = {}
    for reads in (False, True):
        torch.manual_seed(0)
        model = CompactFusion(CompactConfig(**{**TINY.__dict__, "fusion_reads_text": reads})).eval()
        _randomise_head(model)
        for layer in (model.film_features, model.film_context) if reads else ():
            torch.nn.init.normal_(layer.weight, std=0.5)
        for restorer in model.restore:
            torch.nn.init.normal_(restorer.out.weight, std=0.1)
        torch.nn.init.constant_(model.findings.out.bias, -30.0)  # names nothing
        with torch.no_grad():
            outputs[reads] = [model(a, b, text) for text in texts]
        assert reads == any(name.startswith(("attention", "text_proj", "film_")) for name in model.state_dict())
    assert torch.allclose(*outputs[False], atol=1e-6)
    assert (outputs[True][0] - outputs[True][1]).abs().max() > 1e-4


@pytest.mark.parametrize("taught", [False, True])
def test_the_fusion_loss_reaches_the_restorers_only_when_asked(taught):
    """`restorers_taught_by_fusion` false: the restorers learn from the restoration term alone (the fused image's
    gradient stops at the restored sources), so what they do is restore what the text names, not whatever helps
    the fusion core; the core is still trained on what they hand over."""
    torch.manual_seed(0)
    model = CompactFusion(CompactConfig(**{**TINY.__dict__, "restorers_taught_by_fusion": taught}))
    _randomise_head(model)
    for restorer in model.restore:
        torch.nn.init.normal_(restorer.out.weight, std=0.1)
    outputs = model.training_outputs(torch.rand(1, 1, 24, 24), torch.rand(1, 1, 24, 24), torch.randn(1, 5, 16))
    outputs["fused"].square().mean().backward(retain_graph=True)
    restorer_gradient = sum(float(p.grad.abs().sum()) for p in model.restore.parameters() if p.grad is not None)
    assert (restorer_gradient > 0) == taught
    assert float(model.decode[-1].weight.grad.abs().sum()) > 0  # the core learns either way
    outputs["restored_a"].mean().backward()  # the restoration term still reaches them
    assert float(model.restore[0].out.weight.grad.abs().sum()) > 0
