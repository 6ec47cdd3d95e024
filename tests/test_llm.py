"""The `llm` backend against a small OpenAI-compatible server on 127.0.0.1: prompts per task and level, retries
on 5xx, timeouts, malformed replies and the API key."""

from __future__ import annotations

import json
import threading
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
        self.failures: list[str] = []  # "500", "sleep", "garbage", "nojson", "400"
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
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                failure = fake.failures.pop(0) if fake.failures else ""
                if failure == "sleep":
                    threading.Event().wait(3.0)
                if failure in ("500", "400"):
                    self.send_response(int(failure))
                    self.end_headers()
                    self.wfile.write(b'{"error": "boom"}')
                    return
                prompt = body["messages"][-1]["content"]
                if failure == "garbage":
                    payload = b"<html>not json</html>"
                else:
                    if "JSON object" in prompt:
                        content = "not json at all" if failure == "nojson" else "```json\n" + json.dumps(LEVELS) + "\n```"
                    else:
                        content = f"Paragraph for {body['model']}."
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
        assert image["texts"]["paragraph"] == "Paragraph for test-model."
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


def test_levels_reply_that_is_not_json(llm):
    llm.failures = ["", "nojson"]
    result = describe(llm, "ivf")
    assert_user_error(result, "describe", 1, "not a JSON object with detail, structure, semantic")


def test_unreachable_endpoint(tmp_path):
    a, b = pair_paths(*PAIRS["ivf"])
    result = run_fusekit("describe", a, b, "--task", "ivf", "--backend", "llm", "--llm-url", "http://127.0.0.1:9/v1",
                         "--no-cache", "--llm-retries", "0")
    assert_user_error(result, "describe", 1, "cannot reach http://127.0.0.1:9/v1/chat/completions")
