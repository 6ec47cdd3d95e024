"""The `llm` backend against a small OpenAI-compatible server on 127.0.0.1: prompts per task and level, retries
on 5xx, the whole-request deadline, malformed and unusable replies, the API key, --llm-vision's images,
--llm-concurrency and byte-identical output from the cache."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import assert_user_error, pair_paths, run_fusekit

PAIRS = {
    "ivf": ("IVF", "TNO", "10"),
    "mif": ("MIF", "Harvard", "SPECT_10029"),
    "mef": ("MEF", "MEFB", "Igloo"),
    "mff": ("MFF", "MFIFB", "savic_03"),
}
LEVELS = {"detail": "Fine texture on the left.", "structure": "A road crosses the frame.", "semantic": "A night street scene."}


class FakeLLM:
    """Chat-completions server whose behaviour a test sets: a queue of failures before the good answers."""

    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.failures: list[str] = []  # "500", "sleep", "garbage", "nojson", "400", "trickle", "repeat"
        self.latency = 0.0  # seconds every request takes
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                    failure = fake.failures.pop(0) if fake.failures else ""
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                try:
                    self.answer(body, failure)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def answer(self, body, failure):
                threading.Event().wait(fake.latency)
                if failure == "sleep":
                    threading.Event().wait(3.0)
                if failure == "trickle":  # headers at once, then one byte a second: only a deadline cuts it off
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    try:
                        for byte in b'{"choices": [{"message": {"content": "late"}}]}':
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            threading.Event().wait(1.0)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if failure in ("500", "400"):
                    self.send_response(int(failure))
                    self.end_headers()
                    self.wfile.write(b'{"error": "boom"}')
                    return
                prompt = text_of(body["messages"][-1])
                if failure == "garbage":
                    payload = b"<html>not json</html>"
                else:
                    if "JSON object" in prompt:
                        content = "not json at all" if failure == "nojson" else "```json\n" + json.dumps(LEVELS) + "\n```"
                    elif failure == "repeat":
                        content = "The image is dark. " * 12
                    else:
                        content = f"A short paragraph written by {body['model']}."
                    payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except BrokenPipeError:
                    pass

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(part["text"] for part in content if part["type"] == "text")


def pictures_of(message: dict) -> list:
    """The images of an OpenAI image_url message, decoded from their base64 PNG data URIs."""
    import numpy as np
    from PIL import Image

    urls = [part["image_url"]["url"] for part in message["content"] if part["type"] == "image_url"]
    assert all(url.startswith("data:image/png;base64,") for url in urls)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))) for url in urls]


@pytest.fixture()
def llm():
    server = FakeLLM()
    yield server
    server.close()


def describe(llm, task, *extra, env=None):
    a, b = pair_paths(*PAIRS[task])
    return run_fusekit("describe", a, b, "--task", task, "--backend", "stats,llm", "--llm-url", llm.url,
                       "--llm-model", "test-model", "--no-cache", "--llm-retries", "2", *extra, env=env)


@pytest.mark.parametrize("task", sorted(PAIRS))
def test_prompts_per_task_and_level(llm, task):
    result = describe(llm, task, env={"FAKE_KEY": "sekrit"}, *("--llm-key-env", "FAKE_KEY"))
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert document["models"]["llm"] == "test-model"
    for image in document["images"]:
        assert image["texts"]["paragraph"] == "A short paragraph written by test-model."
        assert image["texts"]["levels"] == LEVELS
    assert len(llm.requests) == 4  # paragraph + levels, for A and B
    assert all(h.get("Authorization") == "Bearer sekrit" for h in llm.headers)
    prompts = [request["messages"][-1]["content"] for request in llm.requests]
    assert all(request["model"] == "test-model" and request["temperature"] == 0 for request in llm.requests)
    paragraph_a, levels_a, paragraph_b, levels_b = prompts
    # FILM's ingredients: caption, dense caption, segments, plus the offline measurements.
    for prompt in prompts:
        assert "Image caption:" in prompt and "Dense caption" in prompt and "Segments:" in prompt
        assert "Measured image statistics:" in prompt
    assert "about seven sentences" in paragraph_a and '"detail"' in levels_a and '"semantic"' in levels_a
    focus = {
        "ivf": ("thermal targets", "texture, edges, colours"),
        "mif": ("structural information", "functional information"),
        "mef": ("darker, shadowed parts", "bright parts such as sky"),
        "mff": ("in sharp focus", "in sharp focus"),
    }[task]
    assert focus[0] in paragraph_a and focus[0] in levels_a
    assert focus[1] in paragraph_b and focus[1] in levels_b
    assert "image A of the pair" in paragraph_a and "image B of the pair" in paragraph_b


def test_http_5xx_is_retried(llm):
    llm.failures = ["500", "500"]
    result = describe(llm, "ivf", "--no-levels")
    assert result.returncode == 0, result.stderr.decode()
    assert len(llm.requests) == 4  # two failures, then A and B


def test_5xx_beyond_the_retries_fails_in_one_line(llm):
    llm.failures = ["500"] * 3
    result = describe(llm, "ivf", "--no-levels")
    assert_user_error(result, "describe", 1, "failed after 3 attempts: HTTP 500")
    assert result.stdout == b""


def test_timeout_is_retried_then_reported(llm):
    llm.failures = ["sleep", "sleep"]
    result = describe(llm, "ivf", "--no-levels", "--llm-timeout", "0.5", "--llm-retries", "1")
    assert_user_error(result, "describe", 1, "no reply from")


def test_client_error_is_not_retried(llm):
    llm.failures = ["400"]
    result = describe(llm, "ivf", "--no-levels")
    assert_user_error(result, "describe", 1, "HTTP 400")
    assert len(llm.requests) == 1


def test_malformed_reply(llm):
    llm.failures = ["garbage"]
    result = describe(llm, "ivf", "--no-levels")
    assert_user_error(result, "describe", 1, "malformed reply from LLM endpoint")


def stats_texts(task):
    result = run_fusekit("describe", *pair_paths(*PAIRS[task]), "--task", task)
    assert result.returncode == 0, result.stderr.decode()
    return [image["texts"] for image in json.loads(result.stdout)["images"]]


def test_levels_reply_that_is_not_json_falls_back_to_stats_with_a_warning(llm):
    llm.failures = ["", "nojson"]
    result = describe(llm, "ivf")
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert stderr.count("warning:") == 1 and "not a JSON object with detail, structure, semantic" in stderr, stderr
    first, second = json.loads(result.stdout)["images"]
    assert first["texts"]["levels"] == stats_texts("ivf")[0]["levels"]  # the stats text, not junk
    assert first["texts"]["paragraph"] == "A short paragraph written by test-model."
    assert second["texts"]["levels"] == LEVELS


def test_degenerate_paragraph_falls_back_to_stats_with_a_warning(llm):
    llm.failures = ["repeat"]
    result = describe(llm, "ivf", "--no-levels")
    assert result.returncode == 0, result.stderr.decode()
    assert "paragraph repeats itself; using the stats text" in result.stderr.decode()
    images = json.loads(result.stdout)["images"]
    assert images[0]["texts"]["paragraph"] == stats_texts("ivf")[0]["paragraph"]
    assert images[1]["texts"]["paragraph"] == "A short paragraph written by test-model."


def test_unusable_reply_checks():
    from fusekit.guidance.describe.llm import clean, problem_with

    prompt = "Task: infrared-visible image fusion. This is the infrared (thermal) image of the pair, 620x450 pixels."
    assert problem_with("", prompt) == "is empty"
    assert problem_with("A warm person. " * 5, prompt) == "repeats itself"
    assert problem_with("This is the infrared (thermal) image of the pair, 620x450 pixels.", prompt) == "copies the prompt"
    assert problem_with("A warm person stands near the centre of the dark road.", prompt) is None
    assert clean("Paragraph: A warm person stands. The road is dark and") == "A warm person stands."


def test_deadline_cuts_off_a_trickling_reply(llm):
    llm.failures = ["trickle"]
    started = time.monotonic()
    result = describe(llm, "ivf", "--no-levels", "--llm-timeout", "2", "--llm-retries", "0")
    elapsed = time.monotonic() - started
    assert_user_error(result, "describe", 1, "no reply from")
    assert "within 2 s" in result.stderr.decode()
    assert elapsed < 2 + 12, elapsed  # the reply alone would take ~48 s; process start-up is the rest


def test_vision_requests_carry_the_images(llm):
    from fusekit.io.images import read_image
    from fusekit.io.images import rgb_of

    result = describe(llm, "ivf", "--llm-vision")
    assert result.returncode == 0, result.stderr.decode()
    a, b = (rgb_of(read_image(path)) for path in pair_paths(*PAIRS["ivf"]))
    paragraph_a, levels_a, paragraph_b, levels_b = (request["messages"][-1] for request in llm.requests)
    import numpy as np

    # FILM/TGIF: the image itself with the paragraph prompt (no SAM or Florence-2 ran, so no maps).
    assert [p.shape for p in pictures_of(paragraph_a)] == [a.shape]
    assert np.array_equal(pictures_of(paragraph_a)[0], a) and np.array_equal(pictures_of(paragraph_b)[0], b)
    # MTIF: both images of the pair in one request, this one first, for the three levels.
    for message, order in ((levels_a, (a, b)), (levels_b, (b, a))):
        pictures = pictures_of(message)
        assert len(pictures) == 2 and all(np.array_equal(p, q) for p, q in zip(pictures, order))
        assert '"detail"' in text_of(message)
    assert "Attached images, in order: this image (image A), then the other image of the pair (image B)" in text_of(levels_a)
    assert json.loads(result.stdout)["images"][0]["texts"]["levels"] == LEVELS


def test_vision_maps_from_segments_and_regions():
    import numpy as np

    from fusekit.guidance.describe import ImageInfo
    from fusekit.guidance.describe.pictures import paragraph_pictures

    pixels = np.full((40, 60), 100, np.uint8)
    image = ImageInfo("x.png", "0" * 64, "a", "ivf", pixels, texts={
        "segments": [{"box": [0, 0, 30, 20], "area": 0.25}], "regions": [{"box": [10, 10, 50, 30], "caption": "a car"}]})
    pictures, shown = paragraph_pictures(image)
    assert len(pictures) == 3 and "segmentation map" in shown and "detection map" in shown
    segmentation, detection = pictures_of({"content": [{"type": "image_url", "image_url": {"url": u}} for u in pictures[1:]]})
    assert segmentation[5, 5].any() and not segmentation[35, 55].any()  # the segment's box is filled, the rest black
    assert tuple(detection[10, 30]) != (100, 100, 100) and tuple(detection[20, 30]) == (100, 100, 100)  # outline only


def batch_manifest(tmp_path):
    lines = [json.dumps({"name": f"{task}", "a": str(pair_paths(*PAIRS[task])[0]), "b": str(pair_paths(*PAIRS[task])[1])})
             for task in ("ivf", "mif")]
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_concurrency_keeps_requests_in_flight_and_output_unchanged(llm, tmp_path):
    manifest = batch_manifest(tmp_path)
    llm.latency = 0.3
    outputs = {}
    for n in (1, 4):
        llm.most_in_flight = 0
        result = run_fusekit("describe", "--manifest", manifest, "--task", "ivf", "--backend", "stats,llm", "--llm-url", llm.url,
                             "--llm-model", "test-model", "--no-cache", "--llm-concurrency", str(n), "-o", tmp_path / f"n{n}.jsonl")
        assert result.returncode == 0, result.stderr.decode()
        outputs[n] = (tmp_path / f"n{n}.jsonl").read_bytes()
        assert llm.most_in_flight == n  # 2 pairs x 2 images x 2 requests = 8 requests, N at a time
    assert outputs[1] == outputs[4]
    assert [json.loads(line)["name"] for line in outputs[4].splitlines()] == ["ivf", "mif"]


def test_cached_replies_give_identical_bytes(llm, tmp_path):
    a, b = pair_paths(*PAIRS["ivf"])
    runs = []
    for _ in range(2):
        result = run_fusekit("describe", a, b, "--task", "ivf", "--backend", "stats,llm", "--llm-url", llm.url,
                             "--llm-model", "test-model", "--cache", tmp_path / "cache")
        assert result.returncode == 0, result.stderr.decode()
        runs.append(result.stdout)
    assert len(llm.requests) == 4  # the second run came from the cache
    assert runs[0] == runs[1]


def test_unreachable_endpoint(tmp_path):
    a, b = pair_paths(*PAIRS["ivf"])
    result = run_fusekit("describe", a, b, "--task", "ivf", "--backend", "llm", "--llm-url", "http://127.0.0.1:9/v1",
                         "--no-cache", "--llm-retries", "0")
    assert_user_error(result, "describe", 1, "cannot reach http://127.0.0.1:9/v1/chat/completions")
