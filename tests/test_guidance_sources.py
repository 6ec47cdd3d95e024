"""One guidance layer for fuse and train (fusekit.guidance.kinds / sources, fusekit.app.guidance): recipes from the
model spec and the checkpoint, encoders built once, one error naming the command, tensors checked on load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA
from tiny_models import build_clip
from train_tiny import TEXT_DIM  # noqa: F401  (registers the tiny-test model)

from fusekit.cli import main
from fusekit.errors import FusekitError
from fusekit.guidance.kinds import KINDS, read_guidance
from fusekit.io.formats import read_checkpoint, write_safetensors
from fusekit.io.images import read_image

TNO = DATA / "IVF" / "TNO"
TINY_COMPACT = ["--set", "channels=4", "--set", "context_channels=8", "--set", "heads=2"]
STEP = ["--crop", "32", "--batch-size", "2", "--max-steps", "1", "--device", "cpu"]


def error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def test_train_compact_needs_no_guidance_options(tmp_path, monkeypatch, capsys):
    """The bundled weights' recipe (stats + offline) is computed and recorded; it is the paper's: no warning."""
    monkeypatch.setenv("FUSEKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["train", "--model", "compact", "--task", "ivf", "--data", str(TNO), *STEP, *TINY_COMPACT, "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    _, meta = read_checkpoint(out / "model.safetensors")
    assert (meta["guidance_describer"], meta["text_encoder"], meta["text_dim"]) == ("stats", "offline", "768")
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 2  # one per pair, under $FUSEKIT_CACHE


def test_train_with_a_clip_encoder_model_builds_the_encoder_once(tmp_path, monkeypatch, capsys):
    """`--describer stats --encoder clip --encoder-model DIR` (a TypeError before): the CLIP text model is loaded
    once for the six pairs, and the run records the recipe."""
    import fusekit.hub

    clip = tmp_path / "clip"
    build_clip(clip)
    loads = []
    real = fusekit.hub.load_pretrained

    def counting(*args, **kwargs):
        loads.append(args[3] if len(args) > 3 else kwargs.get("what"))
        return real(*args, **kwargs)

    monkeypatch.setattr(fusekit.hub, "load_pretrained", counting)
    out = tmp_path / "run"
    args = ["train", "--model", "tiny-test", "--task", "ivf", "--data", str(DATA / "IVF" / "MSRS"), "--describer", "stats",
            "--encoder", "clip", "--encoder-model", str(clip), "--set", "text_dim=32", "--cache", str(tmp_path / "cache"),
            *STEP, "--out", str(out)]
    assert main(args) == 0
    assert loads.count("CLIP text model") == 1 and loads.count("CLIP text model tokenizer") == 1, loads
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 6
    _, meta = read_checkpoint(out / "model.safetensors")
    assert (meta["text_encoder"], meta["text_dim"], meta["text_encoder_model"]) == ("clip", "32", str(clip))
    err = capsys.readouterr().err
    assert err.count("warning: training tiny-test on clip text features (the paper's: test)") == 1, err


def test_mtif_trained_on_offline_text_fuses_without_text(tmp_path, monkeypatch, capsys):
    """The checkpoint's recorded recipe is computed by `fuse` when no --text is given: the same bytes as fusing with
    the `describe | encode-text --encoder offline` file of the pair. Training off the paper's recipe warns once."""
    from fusekit.guidance.describe import describe_pair
    from fusekit.guidance.text import encode_descriptions

    monkeypatch.setenv("FUSEKIT_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "run" / "model.safetensors"
    tiny = ["--set", "channels=[4,4,4]", "--set", "heads=2", "--set", "decoder_blocks=1", "--set", "adapter_hidden=16"]
    assert main(["train", "--model", "mtif", "--task", "ivf", "--data", str(TNO), "--describer", "stats", "--encoder", "offline",
                 "--resize", "none", "--no-paper-augment", *STEP, *tiny, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: training mtif on offline text features (the paper's: blip2)") == 1, err
    a, b = TNO / "ir" / "10.png", TNO / "vi" / "10.png"
    assert main(["fuse", str(a), str(b), "--task", "ivf", "--model", "mtif", "--weights", str(weights), "--device", "cpu",
                 "-o", str(tmp_path / "computed.png")]) == 0
    text = tmp_path / "pair.safetensors"
    tensors, meta = encode_descriptions(describe_pair(a, b, "ivf"), "offline")
    write_safetensors(text, "text-features", tensors, meta)
    assert main(["fuse", str(a), str(b), "--task", "ivf", "--model", "mtif", "--weights", str(weights), "--device", "cpu",
                 "--text", str(text), "-o", str(tmp_path / "from-file.png")]) == 0
    assert (tmp_path / "computed.png").read_bytes() == (tmp_path / "from-file.png").read_bytes()


def test_missing_paper_guidance_names_the_command_that_makes_it(tmp_path, capsys):
    """film's recipe (BLIP-2 text) is not computed unasked: one usage error with the exact describe | encode-text line."""
    code = main(["train", "--model", "film", "--task", "ivf", "--data", str(TNO), "--out", str(tmp_path / "x")])
    line = error_line(capsys)
    assert code == 2 and not (tmp_path / "x").exists()
    assert "model 'film' needs text features (--text)" in line
    assert "fusekit describe A B --task ivf --backend blip2,florence2,sam,llm | fusekit encode-text --encoder blip2" in line


def test_fuse_and_train_share_the_guidance_options():
    """Both commands declare the eight guidance options with the one definition in cli/options.py."""
    import typing

    from fusekit.cli import fuse, options, train

    shared = {"text": options.Text, "image_features": options.ImageFeatures, "semantics": options.Semantics,
              "describer": options.Describer, "encoder": options.Encoder, "encoder_model": options.EncoderModel,
              "image_encoder": options.ImageEncoder, "image_encoder_model": options.ImageEncoderModel}
    for module in (fuse, train):
        hints = typing.get_type_hints(module.run, include_extras=True)
        for name, declared in shared.items():
            assert hints[name] == declared, (module.__name__, name)


def semantics_file(path, mask, text_semantics):
    write_safetensors(path, "semantics", {"mask": mask, "text_semantics": text_semantics}, {"dim": "8"})


@pytest.mark.parametrize("mask, text_semantics, problem", [
    (torch.zeros(1, 4, 4), torch.zeros(3, 8), "'mask' is [1, 4, 4], but model 'tesg' needs a rank-2 tensor"),
    (torch.zeros(4, 4), torch.zeros(8), "'text_semantics' is [8], but model 'tesg' needs a rank-2 tensor"),
])
def test_semantics_of_the_wrong_rank_are_one_user_error(tmp_path, mask, text_semantics, problem):
    path = tmp_path / "pair.safetensors"
    semantics_file(path, mask, text_semantics)
    with pytest.raises(FusekitError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        read_guidance(KINDS["semantics"], path, "model 'tesg'")


def test_semantics_of_another_size_than_the_images_are_refused(tmp_path):
    from fusekit.app.guidance import GuidanceOptions, PairGuidance, Recipe
    from fusekit.io.pairs import Item

    a, b = TNO / "ir" / "10.png", TNO / "vi" / "10.png"
    height, width = read_image(a).shape[:2]
    semantics_file(tmp_path / "10.safetensors", torch.zeros(height, width - 1), torch.zeros(3, 8))
    guidance = PairGuidance(("semantics",), GuidanceOptions(semantics=str(tmp_path)), Recipe(), task="ivf", model="tesg")
    with pytest.raises(FusekitError, match=rf"mask is \[{height}, {width - 1}\], images are \[{height}, {width}\]"):
        guidance.for_item(Item("10", {"a": str(a), "b": str(b)}), size=(height, width))


def test_each_image_is_hashed_once_per_command(tmp_path, monkeypatch):
    """Guidance matched by hashes, hash checks and the computed recipe's cache key share one hash per image."""
    import fusekit.guidance.describe.pipeline
    import fusekit.io.pairfiles
    from fusekit.app.guidance import GuidanceOptions, PairGuidance, Recipe
    from fusekit.io.pairs import Item

    hashed = []
    real = fusekit.io.pairfiles.sha256_file
    for module in (fusekit.io.pairfiles, fusekit.guidance.describe.pipeline):
        monkeypatch.setattr(module, "sha256_file", lambda path: hashed.append(str(path)) or real(path))
    options = GuidanceOptions(cache=str(tmp_path / "cache"))
    guidance = PairGuidance(("text",), options, Recipe("stats", "offline"), task="ivf", model="compact")
    items = [Item(name, {"a": str(TNO / "ir" / f"{name}.png"), "b": str(TNO / "vi" / f"{name}.png")}) for name in ("10", "18")]
    first = [guidance.for_item(item) for item in items]
    again = [guidance.for_item(item) for item in items]  # read back from the cache, nothing hashed again
    assert sorted(hashed) == sorted(path for item in items for path in (item.a, item.b))
    for one, two in zip(first, again):
        assert torch.equal(one["text"], two["text"]) and one["text"].shape[-1] == 768
    assert np.isfinite(first[0]["text"].numpy()).all()


def test_weights_of_other_sizes_than_their_config_are_one_user_error(tmp_path, capsys):
    """A model folder whose config.json disagrees with its weights (transformers' ignore_mismatched_sizes error)."""
    import json

    clip = tmp_path / "clip"
    build_clip(clip)
    config = json.loads((clip / "config.json").read_text())
    config["text_config"]["intermediate_size"] = 48
    (clip / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    code = main(["train", "--model", "tiny-test", "--task", "ivf", "--data", str(TNO), "--describer", "stats", "--encoder", "clip",
                 "--encoder-model", str(clip), "--set", "text_dim=32", "--cache", str(tmp_path / "cache"), *STEP,
                 "--out", str(tmp_path / "run")])
    line = error_line(capsys)
    assert code == 1 and "its weights have other sizes than its config.json says" in line, line


def test_mgfusion_trained_on_computed_clip_embeddings_fuses_without_image_features(tmp_path):
    """The image half of the recorded recipe: `fuse` computes the CLIP embeddings the weights were trained on,
    giving the bytes of fusing with the `encode-image` file of the pair."""
    clip = tmp_path / "clip"
    build_clip(clip)
    weights = tmp_path / "run" / "model.safetensors"
    tiny = ["--set", "channels=8", "--set", "blocks=1", "--set", "heads=2", "--set", "embed_dim=24"]
    assert main(["train", "--model", "mgfusion", "--task", "ivf", "--data", str(TNO), "--image-encoder", "clip",
                 "--image-encoder-model", str(clip), "--cache", str(tmp_path / "cache"), *STEP, *tiny, "--out", str(tmp_path / "run")]) == 0
    _, meta = read_checkpoint(weights)
    assert (meta["guidance_image_encoder"], meta["image_encoder_model"], meta["image_dim"]) == ("clip", str(clip), "24")
    a, b = TNO / "ir" / "18.png", TNO / "vi" / "18.png"
    fuse = ["fuse", str(a), str(b), "--task", "ivf", "--model", "mgfusion", "--weights", str(weights), "--device", "cpu"]
    assert main([*fuse, "-o", str(tmp_path / "computed.png")]) == 0
    features = tmp_path / "pair.safetensors"
    assert main(["encode-image", str(a), str(b), "--encoder", "clip", "--model-path", str(clip), "-o", str(features)]) == 0
    assert main([*fuse, "--image-features", str(features), "-o", str(tmp_path / "from-file.png")]) == 0
    assert (tmp_path / "computed.png").read_bytes() == (tmp_path / "from-file.png").read_bytes()
