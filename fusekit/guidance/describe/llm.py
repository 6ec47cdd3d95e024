"""The `llm` backend: FILM's paragraph and MTIF's three levels, written by a language model.

Two ways to run the model: an OpenAI-compatible chat-completions endpoint (`--llm-url`, e.g. a local vLLM or
Ollama server, or a hosted API; the key is read from the environment variable named by `--llm-key-env` and sent
only when set), or a local transformers causal LM (`--model-path llm=DIR` or `--model llm=ID`). Requests time
out after `--llm-timeout` seconds and are retried up to `--llm-retries` times on timeouts, connection errors and
HTTP 5xx/429, with exponential back-off. Greedy decoding (temperature 0), so cached replies are reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request

from ... import log
from ...errors import FusekitError
from ...io.formats import TEXT_LEVELS
from .base import Describer, ImageInfo
from .prompts import levels_messages, paragraph_messages

DEFAULT_LOCAL_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
DEFAULT_ENDPOINT_MODEL = "gpt-4o-mini"
RETRY_STATUS = {429, 500, 502, 503, 504}


def chat_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


class EndpointClient:
    """Minimal OpenAI-compatible chat-completions client (urllib; no extra dependency)."""

    def __init__(self, url: str, model: str, key_env: str, timeout: float, retries: int, max_tokens: int):
        self.url, self.model, self.key_env = chat_url(url), model, key_env
        self.timeout, self.retries, self.max_tokens = timeout, retries, max_tokens

    def complete(self, messages: list[dict]) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.key_env, "").strip()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(8.0, 0.5 * 2 ** (attempt - 1))
                log.verbose(f"llm: {problem}; retry {attempt}/{self.retries} in {delay:.1f} s")
                time.sleep(delay)
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:200].decode("utf-8", errors="replace").strip()
                if exc.code in RETRY_STATUS:
                    problem = f"HTTP {exc.code} from {self.url}"
                    continue
                raise FusekitError(f"LLM endpoint {self.url} answered HTTP {exc.code} ({detail or exc.reason})",
                                   "check --llm-url, --llm-model and the key in $" + self.key_env) from exc
            except (TimeoutError, socket.timeout):
                problem = f"no reply from {self.url} within {self.timeout:g} s"
                continue
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                    problem = f"no reply from {self.url} within {self.timeout:g} s"
                else:
                    problem = f"cannot reach {self.url} ({exc.reason})"
                continue
            except (ConnectionError, OSError) as exc:
                problem = f"connection to {self.url} failed ({exc})"
                continue
            return parse_reply(payload, self.url)
        raise FusekitError(f"LLM endpoint failed after {self.retries + 1} attempts: {problem}",
                           "check that the server is running, or raise --llm-timeout / --llm-retries")


def parse_reply(payload: bytes, url: str) -> str:
    """The assistant message of a chat-completions reply; a clear error for anything else."""
    try:
        reply = json.loads(payload.decode("utf-8"))
        content = reply["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise FusekitError(f"malformed reply from LLM endpoint {url} (not a chat-completions answer)",
                           "check that --llm-url points at an OpenAI-compatible /v1 API") from exc
    if not isinstance(content, str) or not content.strip():
        raise FusekitError(f"LLM endpoint {url} returned an empty message", "try another --llm-model")
    return content.strip()


class LocalLM:
    """A transformers causal LM run in-process, greedy decoding."""

    def __init__(self, model_id: str, model_path: str | None, options):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ...hub import load_pretrained, model_device

        self.device, dtype = model_device(options)
        model = load_pretrained(AutoModelForCausalLM.from_pretrained, model_id, model_path, "LLM")
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, model_id, model_path, "LLM tokenizer")
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.max_tokens = options.llm_max_tokens

    def complete(self, messages: list[dict]) -> str:
        import torch

        if getattr(self.tokenizer, "chat_template", None):
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = "\n\n".join(message["content"] for message in messages) + "\n\n"
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_tokens, do_sample=False,
                                         pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def parse_levels(reply: str, where: str) -> dict:
    """MTIF's three levels from a reply that should be a JSON object (a ```json fence around it is accepted)."""
    match = re.search(r"\{.*\}", reply, flags=re.DOTALL)
    try:
        levels = json.loads(match.group(0)) if match else None
    except ValueError:
        levels = None
    if not isinstance(levels, dict) or not all(isinstance(levels.get(k), str) and levels[k].strip() for k in TEXT_LEVELS):
        raise FusekitError(f"{where}: the LLM's three-level answer is not a JSON object with {', '.join(TEXT_LEVELS)}",
                           "try another --llm-model, or --no-levels for the paragraph only")
    return {level: levels[level].strip() for level in TEXT_LEVELS}


class LLMDescriber(Describer):
    """Paragraph (FILM) and three levels (MTIF) from the texts of the earlier backends."""

    name = "llm"

    @property
    def default_model(self) -> str:
        return DEFAULT_ENDPOINT_MODEL if self.options.llm_url else DEFAULT_LOCAL_MODEL

    @property
    def model_id(self) -> str:
        if self.options.llm_url:
            return self.options.llm_model or DEFAULT_ENDPOINT_MODEL
        return self.model_path or self.options.llm_model or self.options.model_ids.get(self.name) or DEFAULT_LOCAL_MODEL

    def _client(self):
        if not hasattr(self, "_cached_client"):
            o = self.options
            if o.llm_url:
                self._cached_client = EndpointClient(o.llm_url, self.model_id, o.llm_key_env, o.llm_timeout, o.llm_retries, o.llm_max_tokens)
            else:
                model_id = o.llm_model or o.model_ids.get(self.name) or DEFAULT_LOCAL_MODEL
                self._cached_client = LocalLM(model_id, self.model_path, o)
        return self._cached_client

    def _requests(self, image: ImageInfo) -> list[tuple[str, list[dict]]]:
        requests = [("paragraph", paragraph_messages(image))]
        if self.options.llm_levels:
            requests.append(("levels", levels_messages(image)))
        return requests

    def cache_key(self, image: ImageInfo) -> str:
        material = json.dumps([self.options.llm_url or "local", self._requests(image)], sort_keys=True)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def describe(self, image: ImageInfo) -> dict:
        texts = {}
        for kind, messages in self._requests(image):
            reply = self._client().complete(messages)
            if kind == "paragraph":
                if not reply:
                    raise FusekitError(f"{image.path}: the LLM wrote an empty paragraph", "try another --llm-model")
                texts["paragraph"] = reply
            else:
                texts["levels"] = parse_levels(reply, image.path)
        return texts
