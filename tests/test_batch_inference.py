"""--batch-size: the model backends of describe (blip2, florence2, sam, the local llm) and the model encoders of
encode-text / encode-image run several images or texts in one call, with exactly the results of one at a time.

Tiny random-weight models (tests/tiny_models.py) on CPU, real DEV images; the speed-up is for GPUs and is not
measured here."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import DATA, run_fusekit
from tiny_models import tiny_models  # noqa: F401  (session fixture)

HARVARD = DATA / "MIF" / "Harvard"
NAMES = sorted(path.stem for path in (HARVARD / "mri").glob("*.png"))[:3]
TEXTS = ["a photo of a person in the street at night .", "dark sky", "the bright lamp , a warm region of the thermal image ."]
BACKENDS = ("stats", "blip2", "florence2", "sam", "llm")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Three DEV pairs in their own A and B folders (a batch of 2 then has a full group and a short one)."""
    root = tmp_path_factory.mktemp("pairs")
    for role in ("mri", "other"):
        (root / role).mkdir()
        for name in NAMES:
            shutil.copy(HARVARD / role / f"{name}.png", root / role / f"{name}.png")
    return root / "mri", root / "other"


def _model_args(tiny_models):  # noqa: F811
    return [argument for name in BACKENDS[1:] for argument in ("--model-path", f"{name}={tiny_models[name]}")]


@pytest.mark.parametrize(("encoder", "folder", "extra"), [("blip2", "blip2-text", {}), ("clip", "clip", {}),
                                                          ("hf", "bert", {}), ("hf", "bert", {"pooled": True})])
def test_batched_text_encoders_equal_one_by_one(tiny_models, encoder, folder, extra):  # noqa: F811
    from fusekit.guidance.text import TextOptions, get_encoder

    def encode(batch_size):
        options = TextOptions(device="cpu", model_path=str(tiny_models[folder]), batch_size=batch_size, **extra)
        return get_encoder(encoder, options).encode(TEXTS)

    alone, together = encode(1), encode(3)
    assert len({states.shape[0] for states in alone}) == (1 if extra else 3)  # texts of different lengths were padded
    for one, many in zip(alone, together):
        assert one.shape == many.shape
        assert torch.allclose(one, many, atol=1e-5)


def test_batched_image_encoder_equals_one_by_one(tiny_models):  # noqa: F811
    from fusekit.guidance.vision import ImageOptions, get_image_encoder
    from fusekit.io.images import read_image, rgb_of

    encoder = get_image_encoder("clip", ImageOptions(device="cpu", model_path=str(tiny_models["clip"])))
    images = [rgb_of(read_image(HARVARD / "mri" / f"{name}.png")) for name in NAMES]
    together = encoder.embed(images)
    for index, image in enumerate(images):
        assert torch.allclose(encoder.embed([image])[0], together[index], atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def test_batched_describers_equal_one_by_one(tiny_models, monkeypatch):  # noqa: F811
    from fusekit.guidance.describe import DescribeOptions, Pipeline, florence2, sam

    # The random tiny captioners stop at once or write only special tokens: made to write 8+ tokens, decoded as
    # their token ids, and Florence-2's raw answer kept as one region (random weights give no boxes), the
    # comparison below is between the generated token sequences themselves.
    monkeypatch.setattr(florence2, "parse_regions", lambda text, width, height: [{"box": [0, 0, 1, 1], "caption": text}])
    monkeypatch.setattr(sam, "MIN_SCORE", -1e9)  # the random SAM's IoU guesses are low: keep every mask to compare them

    def documents(batch_size):
        options = DescribeOptions(device="cpu", batch_size=batch_size, llm_max_tokens=24, max_new_tokens=12,
                                  model_paths={name: str(tiny_models[name]) for name in BACKENDS[1:]})
        pipeline = Pipeline(BACKENDS, options)
        for describer in pipeline.describers[1:3]:
            processor, model = describer.loaded[:2]
            for generating in (model, getattr(model, "language_model", model)):  # BLIP-2's OPT generates on its own
                generating.generation_config.min_new_tokens = 8
            processor.batch_decode = lambda output, **_: [" ".join(map(str, row.tolist())) for row in output]
        items = [(name, pipeline.load([HARVARD / "mri" / f"{name}.png", HARVARD / "other" / f"{name}.png"], "mif")) for name in NAMES]
        return pipeline.describe_many(items, "mif")

    alone, together = documents(1), documents(4)
    assert together == alone
    texts = [image["texts"] for document in alone for image in document["images"]]
    assert all(len(text["caption"].split()) >= 12 and len(text["regions"][0]["caption"].split()) >= 8 for text in texts)
    assert len({text["paragraph"] for text in texts}) > 1  # the LLM wrote each image its own paragraph
    assert all(text["segments"] for text in texts)


def test_batch_size_2_writes_what_batch_size_1_writes(tiny_models, folders, tmp_path):  # noqa: F811
    a, b = folders
    common = ["describe", a, b, "--task", "mif", "--backend", ",".join(BACKENDS), "--llm-max-tokens", "24",
              "--device", "cpu", *_model_args(tiny_models)]
    one = run_fusekit(*common, "--no-cache", "-o", tmp_path / "one")
    assert one.returncode == 0, one.stderr.decode()
    # A cache that holds one pair already: its images are skipped from the batches, the rest described together.
    cache = tmp_path / "cache"
    first = run_fusekit("describe", a / f"{NAMES[1]}.png", b / f"{NAMES[1]}.png", *common[3:], "--cache", cache,
                        "-o", tmp_path / "first.json")
    assert first.returncode == 0, first.stderr.decode()
    two = run_fusekit(*common, "--batch-size", "2", "--cache", cache, "-o", tmp_path / "two")
    assert two.returncode == 0, two.stderr.decode()
    for name in NAMES:
        assert (tmp_path / "two" / f"{name}.json").read_bytes() == (tmp_path / "one" / f"{name}.json").read_bytes()
    assert len(list((cache / "blip2").rglob("*.json"))) == 2 * len(NAMES)

    for batch_size in ("1", "2"):
        result = run_fusekit("encode-text", tmp_path / "one", "--encoder", "clip", "--model-path", tiny_models["clip"],
                             "--device", "cpu", "--batch-size", batch_size, "-o", tmp_path / f"text{batch_size}")
        assert result.returncode == 0, result.stderr.decode()
        result = run_fusekit("encode-image", a, b, "--model-path", tiny_models["clip"], "--device", "cpu",
                             "--batch-size", batch_size, "-o", tmp_path / f"image{batch_size}")
        assert result.returncode == 0, result.stderr.decode()
    # Features: the same metadata and tensors; padded batches move the last float bits, so within 1e-5, not bytes.
    from fusekit.io.formats import read_image_features, read_text_features

    for kind, read in (("text", read_text_features), ("image", read_image_features)):
        for name in NAMES:
            (alone, about_alone), (together, about_together) = (read(tmp_path / f"{kind}{n}" / f"{name}.safetensors") for n in "12")
            assert about_together == about_alone and set(together) == set(alone)
            assert all(torch.allclose(together[key], alone[key], atol=1e-5) for key in alone)
