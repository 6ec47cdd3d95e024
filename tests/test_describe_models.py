"""The model backends of `fusekit describe` (BLIP-2, Florence-2, SAM, local VLM, local LLM) through the real CLI,
from tiny models saved with save_pretrained; plus their parsers, model-type checks and the missing-weights errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_user_error, pair_paths, run_fusekit
from tiny_models import tiny_models  # noqa: F401  (session fixture)

PAIR = pair_paths("IVF", "RoadScene", "FLIR_06570")


def test_all_model_backends_from_model_path(tiny_models, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    args = ["describe", *PAIR, "--task", "ivf", "--backend", "stats,blip2,florence2,sam", "--backend", "llm", "--no-levels",
            "--cache", cache, "--device", "cpu"]
    for name in ("blip2", "florence2", "sam", "llm"):
        args += ["--model-path", f"{name}={tiny_models[name]}"]
    result = run_fusekit(*args)
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert document["backends"] == ["stats", "blip2", "florence2", "sam", "llm"]
    assert document["models"]["blip2"] == str(tiny_models["blip2"])
    assert document["models"]["llm"] == str(tiny_models["llm"])
    for image in document["images"]:
        texts = image["texts"]
        assert isinstance(texts["caption"], str)
        assert isinstance(texts["regions"], list) and isinstance(texts["segments"], list)
        assert isinstance(texts["paragraph"], str) and texts["paragraph"]
        assert set(texts["levels"]) == {"detail", "structure", "semantic"}  # from stats; --no-levels kept them
    # Model outputs are cached by image hash + backend + model id (stats is not: it is cheaper to recompute).
    cached = {path.parts[-3] for path in cache.rglob("*.json")}
    assert cached == {"blip2", "florence2", "sam", "llm"}
    assert len(list((cache / "blip2").rglob("*.json"))) == 2


def test_cache_is_used_on_a_re_run(tmp_path):
    from fusekit.guidance.describe import DESCRIBERS, DescribeOptions, Pipeline
    from fusekit.guidance.describe.base import Describer

    calls = []

    class Counting(Describer):
        name = "counting-test"
        default_model = "count-1"

        def describe(self, image):
            calls.append(image.sha256)
            return {"caption": f"call {len(calls)}"}

    DESCRIBERS.add("counting-test", Counting)
    try:
        options = DescribeOptions(cache_dir=str(tmp_path))
        pipeline = Pipeline(["stats"], options)
        pipeline.names.append("counting-test")
        pipeline.describers.append(Counting(options))
        first = pipeline.describe([str(p) for p in PAIR], "ivf")
        second = pipeline.describe([str(p) for p in PAIR], "ivf")
    finally:
        DESCRIBERS._entries.pop("counting-test")
    assert len(calls) == 2
    assert first["images"][1]["texts"]["caption"] == second["images"][1]["texts"]["caption"] == "call 2"


def test_florence2_answer_parsing():
    text = "</s><s>a red car<loc_100><loc_200><loc_300><loc_400>person<loc_0><loc_0><loc_999><loc_999></s>"
    regions = __import__("fusekit.guidance.describe.florence2", fromlist=["parse_regions"]).parse_regions(text, 1000, 500)
    assert regions == [
        {"box": [100.5, 100.2, 300.5, 200.2], "caption": "a red car"},
        {"box": [0.5, 0.2, 999.5, 499.8], "caption": "person"},
    ]


def test_sam_segment_selection():
    from fusekit.guidance.describe.sam import select_segments

    masks = np.zeros((3, 3, 20, 20), bool)
    masks[0, 1, 0:10, 0:10] = True  # best of point 0
    masks[1, 0, 0:10, 0:9] = True  # near-duplicate of it, lower score → dropped
    masks[2, 2, 15:20, 5:20] = True
    scores = np.array([[0.1, 0.95, 0.2], [0.9, 0.1, 0.1], [0.1, 0.2, 0.8]])
    grey = np.full((20, 20), 50.0)
    grey[15:, :] = 200.0
    segments = select_segments(masks, scores, grey)
    assert segments == [
        {"box": [0, 0, 10, 10], "area": 0.25, "mean_intensity": 50.0, "score": 0.95},
        {"box": [5, 15, 20, 20], "area": 0.1875, "mean_intensity": 200.0, "score": 0.8},
    ]


def test_missing_weights_name_the_model_and_the_fix(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "FUSEKIT_CACHE": str(tmp_path / "cache")}
    result = run_fusekit("describe", *PAIR, "--task", "ivf", "--backend", "blip2", "--device", "cpu", env=env)
    stderr = assert_user_error(result, "describe", 1, "'Salesforce/blip2-opt-2.7b' is not in the Hugging Face cache")
    assert "--model-path" in stderr and "hf download Salesforce/blip2-opt-2.7b" in stderr
    assert result.stdout == b""


def test_model_path_that_is_not_a_model(tmp_path):
    from fusekit.guidance.describe import DescribeOptions, Pipeline
    from fusekit.errors import FusekitError

    pipeline = Pipeline(["sam"], DescribeOptions(model_paths={"sam": str(tmp_path)}, device="cpu"))
    with pytest.raises(FusekitError, match="cannot load SAM model from") as error:
        pipeline.describe([str(p) for p in PAIR], "ivf")
    assert "save_pretrained" in str(error.value)


def test_ambiguous_model_path_is_a_usage_error(tmp_path):
    result = run_fusekit("describe", *PAIR, "--task", "ivf", "--backend", "blip2,sam", "--model-path", tmp_path)
    assert_user_error(result, "describe", 2, "BACKEND=VALUE")


def test_unknown_backend_did_you_mean():
    result = run_fusekit("describe", *PAIR, "--task", "ivf", "--backend", "florense2")
    assert_user_error(result, "describe", 2, "did you mean 'florence2'")


def test_vlm_backend_sees_the_image(tiny_models, tmp_path):  # noqa: F811
    from fusekit.guidance.describe import DescribeOptions, Pipeline

    result = run_fusekit("describe", *PAIR, "--task", "ivf", "--backend", "stats,vlm", "--model-path", f"vlm={tiny_models['vlm']}",
                         "--device", "cpu", "--no-cache", "--llm-max-tokens", "12")
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert document["backends"] == ["stats", "vlm"] and document["models"]["vlm"] == str(tiny_models["vlm"])
    for image in document["images"]:
        assert image["texts"]["paragraph"] and set(image["texts"]["levels"]) == {"detail", "structure", "semantic"}
    # In process: every request hands the model the image's pixels (one 32 x 32 image through the processor).
    pipeline = Pipeline(["vlm"], DescribeOptions(model_paths={"vlm": str(tiny_models["vlm"])}, device="cpu", llm_max_tokens=8))
    describer = pipeline.describers[0]
    model = describer._client().model
    seen = []
    generate = model.generate
    model.generate = lambda **kwargs: seen.append(kwargs) or generate(**kwargs)
    pipeline.describe([str(PAIR[0])], "ivf")
    assert len(seen) == 4  # paragraph + one request per level
    assert all(tuple(kwargs["pixel_values"].shape) == (1, 3, 32, 32) for kwargs in seen)
    assert all((kwargs["input_ids"] == 4).sum() == 16 for kwargs in seen)  # the image's 16 tokens in the prompt


@pytest.mark.parametrize(("backend", "folder", "found"), [
    ("blip2", "sam", "sam"), ("florence2", "blip2", "blip-2"), ("sam", "florence2", "florence2"),
    ("vlm", "sam", "sam"), ("llm", "clip", "clip")])
def test_model_type_is_checked_before_loading(tiny_models, backend, folder, found):  # noqa: F811
    result = run_fusekit("describe", PAIR[0], "--task", "ivf", "--backend", backend, "--model-path", f"{backend}={tiny_models[folder]}",
                         "--device", "cpu", "--no-cache")
    assert_user_error(result, "describe", 1, f"holds a '{found}' model, not a")


def test_missing_model_fails_fast_when_the_hub_does_not_answer(tmp_path, monkeypatch):
    import time

    from transformers import Blip2ForConditionalGeneration

    from fusekit import hub
    from fusekit.errors import FusekitError

    env = {"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    result = run_fusekit("describe", *PAIR, "--task", "ivf", "--backend", "blip2", "--device", "cpu", "--no-cache", env=env)
    assert_user_error(result, "describe", 1, "the hub at http://127.0.0.1:9 does not answer")
    # The load itself, without the process start-up: the probe is refused at once, nothing is retried.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    hub.hub_reachable.cache_clear()
    started = time.monotonic()
    with pytest.raises(FusekitError, match="is not in the Hugging Face cache"):
        hub.load_pretrained(Blip2ForConditionalGeneration.from_pretrained, "Salesforce/blip2-opt-2.7b", None, "BLIP-2")
    assert time.monotonic() - started < hub.HUB_PROBE_SECONDS + 2
    hub.hub_reachable.cache_clear()


def test_sam_segments_carry_the_dense_caption_words():
    from fusekit.guidance.describe import ImageInfo
    from fusekit.guidance.describe.prompts import evidence
    from fusekit.guidance.describe.sam import label_segments

    segments = [{"box": [0, 0, 10, 10], "area": 0.25, "mean_intensity": 50.0}, {"box": [30, 30, 40, 40], "area": 0.1, "mean_intensity": 9.0}]
    regions = [{"box": [1, 1, 11, 9], "caption": "a person"}, {"box": [12, 0, 20, 5], "caption": "a car"}]
    labelled = label_segments(segments, regions)
    assert labelled[0]["label"] == "a person" and "label" not in labelled[1]  # no region overlaps the second
    image = ImageInfo("x.png", "0" * 64, "a", "ivf", np.zeros((40, 40), np.uint8), texts={"segments": labelled})
    assert "2 segments: a person box [0, 0, 10, 10], 25.0% of the image" in evidence(image)
