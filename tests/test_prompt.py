"""The user's own words (`--prompt`, a manifest line's `prompt`, a descriptions JSON's `prompt`): stored, encoded,
and reaching the bundled model; refused with one clear line where they cannot reach it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_user_error, pair_paths, run_fusekit

from fusekit.guidance.describe.prompt_findings import prompt_findings
from fusekit.guidance.text import encode_descriptions
from fusekit.guidance.text.offline import tokenize
from fusekit.io.images import read_image

PROMPT = "the visible image is dark and noisy"
PAIR = ("IVF", "MSRS", "00103D")


def _describe(*extra: str) -> dict:
    a, b = pair_paths(*PAIR)
    result = run_fusekit("describe", a, b, "--task", "ivf", *extra)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_describe_stores_the_prompt_and_encode_text_adds_it_to_every_image():
    plain, prompted = _describe(), _describe("--prompt", f"  {PROMPT} ")
    assert prompted["schema"] == "fusekit.descriptions/1.1" and prompted["prompt"] == PROMPT
    assert "prompt" not in plain and prompted["images"] == plain["images"]  # the describer's own texts unchanged
    with_prompt, _ = encode_descriptions(prompted, "offline")
    without, _ = encode_descriptions(plain, "offline")
    extra = len(tokenize(f"{PROMPT} {prompt_findings(PROMPT, 'ivf', {})}"))  # the words, then the describer's sentence
    for key in ("text_a", "text_b", "text_detail"):
        assert with_prompt[key].shape[0] - without[key].shape[0] == extra * (2 if key == "text_detail" else 1)
    length = without["text_a"].shape[0]
    assert np.array_equal(with_prompt["text_a"][:length].numpy(), without["text_a"].numpy())  # added after, not instead


def test_fuse_prompt_changes_the_output_and_a_manifest_prompt_is_the_same(tmp_path):
    a, b = pair_paths(*PAIR)
    plain, prompted = tmp_path / "plain.png", tmp_path / "prompted.png"
    for out, extra in ((plain, ()), (prompted, ("--prompt", PROMPT))):
        result = run_fusekit("fuse", a, b, "--task", "ivf", "--model", "compact", "--grey", *extra, "-o", out)
        assert result.returncode == 0, result.stderr.decode()
    change = np.abs(read_image(prompted).astype(float) - read_image(plain).astype(float)).mean()
    # the words reach the model and it does what they say: a clean day image told it is dark is brightened (by
    # ~87 grey levels with the bundled ivf weights)
    brighter = read_image(prompted).astype(float).mean() - read_image(plain).astype(float).mean()
    assert change > 20 and brighter > 20, (change, brighter)
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text(json.dumps({"a": str(a), "b": str(b), "name": "p", "prompt": PROMPT}) + "\n")
    result = run_fusekit("fuse", "--manifest", manifest, "--task", "ivf", "--model", "compact", "--grey", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "out" / "p.png").read_bytes() == prompted.read_bytes()


def test_prompt_that_cannot_reach_the_model_is_a_usage_error(tmp_path):
    a, b = pair_paths(*PAIR)
    out = tmp_path / "f.png"
    assert_user_error(run_fusekit("fuse", a, b, "--task", "ivf", "--model", "gff", "--prompt", PROMPT, "-o", out),
                      "fuse", 2, "takes no text")
    text = tmp_path / "t.safetensors"
    described = run_fusekit("describe", a, b, "--task", "ivf")
    assert run_fusekit("encode-text", "-", "-o", text, input=described.stdout).returncode == 0
    assert_user_error(run_fusekit("fuse", a, b, "--task", "ivf", "--model", "compact", "--text", text, "--prompt", PROMPT, "-o", out),
                      "fuse", 2, "describe")
    assert not out.exists()


@pytest.mark.parametrize("task, prompt, sentence", [
    ("ivf", "the visible image is dark and noisy", "Degradation: the visible image is dark (under-exposed) and noisy."),
    ("ivf", "The thermal image looks flat; the visible one is not noisy, just too dim",
     "Degradation: the infrared image is flat (low in contrast). Degradation: the visible image is dark (under-exposed)."),
    ("ivf", "the infrared image is dark", ""),  # not a finding the describer makes of a thermal image
    ("mif", "the CT is grainy, and the MRI is low contrast",
     "Degradation: the MRI image is flat (low in contrast). Degradation: the CT image is noisy."),
    ("mef", "the under-exposed frame is noisy", "Degradation: the under-exposed image is noisy."),
    ("mff", "keep the text sharp", ""),
])
def test_a_prompt_names_findings_in_the_describers_words(task, prompt, sentence):
    """What a user says is wrong is restated as the `stats` describer writes it (the sentence the bundled weights
    read their findings from); negated and inapplicable words name nothing."""
    assert prompt_findings(prompt, task, {"b": "CT_2013.png"}) == sentence
