"""The `llm` backend: FILM's paragraph and MTIF's three levels, written by a language model.

Two ways to run the model: an OpenAI-compatible chat-completions endpoint (`--llm-url`, e.g. a local vLLM or
Ollama server, or a hosted API; the key is read from the environment variable named by `--llm-key-env` and sent
only when set), or a local transformers causal LM (`--model-path llm=DIR` or `llm=FILE.gguf`, or `--model llm=ID`).

Endpoint requests go through httpx: `--llm-timeout` is a deadline for the whole request (a server that trickles
its answer is cut off), failures are retried up to `--llm-retries` times on timeouts, connection errors and HTTP
5xx/429 with exponential back-off, and up to `--llm-concurrency` requests are in flight at once (results are
assembled in input order, so the output does not depend on N). `--llm-vision` sends the images with the prompt.

Decoding is greedy (temperature 0), so cached replies are reproducible. Every reply is checked: empty, repeating
itself (a 4-gram more than 3 times), copying the prompt, or (levels) not the asked-for form is unusable; the field
then gets the `stats` text with one warning, never a silent junk paragraph.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from ... import log
from ...errors import FusekitError
from ...io.formats import TEXT_LEVELS
from .base import DESCRIBERS, Describer, ImageInfo
from .pictures import pair_pictures, paragraph_pictures
from .prompts import level_messages, levels_messages, paragraph_messages, prompt_text

DEFAULT_LOCAL_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
DEFAULT_ENDPOINT_MODEL = "gpt-4o-mini"
RETRY_STATUS = {429, 500, 502, 503, 504}
LEVEL_TOKENS = 80  # one short request per level: two sentences
REPEAT_LIMIT = 3  # a 4-gram of words seen more often than this = degenerate repetition
ECHO_SHARE = 0.5  # this share of the reply's word 6-grams found in the prompt = an echo of the prompt


def chat_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


class Retry(Exception):
    """A failure worth another attempt (timeout, connection, HTTP 5xx/429); its message says what happened."""


class EndpointClient:
    """OpenAI-compatible chat-completions client on httpx (one pooled, thread-safe connection pool)."""

    def __init__(self, url: str, model: str, key_env: str, timeout: float, retries: int, max_tokens: int, concurrency: int = 1):
        import httpx

        self.url, self.model, self.key_env = chat_url(url), model, key_env
        self.timeout, self.retries, self.max_tokens = timeout, retries, max_tokens
        limits = httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency))
        self.http = httpx.Client(timeout=httpx.Timeout(timeout), limits=limits)

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": max_tokens or self.max_tokens}).encode()
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
            try:
                return parse_reply(self._post(body, headers), self.url)
            except Retry as exc:
                problem = str(exc)
        raise FusekitError(f"LLM endpoint failed after {self.retries + 1} attempts: {problem}",
                           "check that the server is running, or raise --llm-timeout / --llm-retries")

    def _post(self, body: bytes, headers: dict) -> bytes:
        """The reply body, read within one deadline of `timeout` seconds for the whole request."""
        import httpx

        deadline = time.monotonic() + self.timeout
        late = f"no reply from {self.url} within {self.timeout:g} s"
        try:
            with self.http.stream("POST", self.url, content=body, headers=headers) as response:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise Retry(late)
                payload = b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise Retry(late) from exc
        except httpx.TransportError as exc:
            raise Retry(f"cannot reach {self.url} ({exc or type(exc).__name__})") from exc
        if response.status_code in RETRY_STATUS:
            raise Retry(f"HTTP {response.status_code} from {self.url}")
        if response.status_code >= 400:
            detail = payload[:200].decode("utf-8", errors="replace").strip()
            raise FusekitError(f"LLM endpoint {self.url} answered HTTP {response.status_code} ({detail or response.reason_phrase})",
                               "check --llm-url, --llm-model and the key in $" + self.key_env)
        return payload


def parse_reply(payload: bytes, url: str) -> str:
    """The assistant message of a chat-completions reply; a clear error for anything else."""
    try:
        reply = json.loads(payload.decode("utf-8"))
        content = reply["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise FusekitError(f"malformed reply from LLM endpoint {url} (not a chat-completions answer)",
                           "check that --llm-url points at an OpenAI-compatible /v1 API") from exc
    if not isinstance(content, str):
        raise FusekitError(f"malformed reply from LLM endpoint {url} (the message has no text)", "try another --llm-model")
    return content.strip()


class LocalLM:
    """A transformers causal LM run in-process (a folder or a .gguf file), greedy decoding without repetition.

    A model with a chat template gets its chat format; a base model (no template, e.g. gemma-3-270m) gets a plain
    completion prompt that ends where the answer starts. Repetition is held back by a repetition penalty and by
    never repeating a 4-gram of tokens, the usual failure of 100M-class models under greedy decoding."""

    def __init__(self, model_id: str, model_path: str | None, options):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        from ...hub import load_pretrained, model_device

        self.device, dtype = model_device(options)
        model = load_pretrained(AutoModelForCausalLM.from_pretrained, model_id, model_path, "LLM",
                                tuple(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES))
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, model_id, model_path, "LLM tokenizer")
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.max_tokens = options.llm_max_tokens

    def prompt(self, messages: list[dict]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return prompt_text(messages) + "\n\nAnswer:"

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        return self.complete_many([messages], max_tokens)[0]

    def complete_many(self, conversations: list[list[dict]], max_tokens: int | None = None) -> list[str]:
        """Replies to several prompts from one generate call, left-padded to the longest (--batch-size).

        The repetition penalty and the 4-gram ban see only each prompt's own tokens (`Unpadded`), so a padded
        prompt gets exactly the reply it gets alone."""
        import torch
        from transformers import LogitsProcessorList, NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        inputs = tokenizer([self.prompt(messages) for messages in conversations], return_tensors="pt", padding=True,
                           add_special_tokens=not tokenizer.chat_template).to(self.device)
        pads = (inputs["attention_mask"].shape[1] - inputs["attention_mask"].sum(dim=1)).tolist()
        processors = LogitsProcessorList([Unpadded(RepetitionPenaltyLogitsProcessor(1.15), pads),
                                          Unpadded(NoRepeatNGramLogitsProcessor(4), pads)])
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_tokens or self.max_tokens, do_sample=False,
                                         repetition_penalty=1.0, no_repeat_ngram_size=0, logits_processor=processors,
                                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        start = inputs["input_ids"].shape[1]
        return [tokenizer.decode(row[start:], skip_special_tokens=True).strip() for row in output]


class Unpadded:
    """A logits processor applied to each row's tokens after its left padding, so padding changes nothing."""

    def __init__(self, processor, pads: list[int]):
        self.processor, self.pads = processor, pads

    def __call__(self, input_ids, scores):
        import torch

        return torch.cat([self.processor(input_ids[row:row + 1, pad:], scores[row:row + 1]) for row, pad in enumerate(self.pads)])


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def clean(reply: str) -> str:
    """The answer without a leading label ("Paragraph:", "Answer:") and without a sentence cut off at the token limit."""
    text = re.sub(r"^\s*(?:paragraph|answer|description|detail|structure|semantic)\s*:\s*", "", reply.strip(), flags=re.IGNORECASE)
    text = " ".join(text.split())
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    return text[:ends[-1]] if ends and ends[-1] < len(text) else text


def problem_with(text: str, prompt: str) -> str | None:
    """Why a reply is unusable, or None: empty, degenerate repetition, or a copy of the prompt."""
    tokens = words(text)
    if len(tokens) < 4:
        return "is empty" if not tokens else "is too short"
    grams = Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))
    if grams and max(grams.values()) > REPEAT_LIMIT:
        return "repeats itself"
    asked = words(prompt)
    asked_grams = {tuple(asked[i:i + 6]) for i in range(len(asked) - 5)}
    own = [tuple(tokens[i:i + 6]) for i in range(len(tokens) - 5)]
    if own and sum(gram in asked_grams for gram in own) / len(own) > ECHO_SHARE:
        return "copies the prompt"
    return None


def parse_levels(reply: str) -> dict | None:
    """MTIF's three levels from a reply that should be a JSON object (a ```json fence around it is accepted)."""
    match = re.search(r"\{.*\}", reply, flags=re.DOTALL)
    try:
        levels = json.loads(match.group(0)) if match else None
    except ValueError:
        levels = None
    if not isinstance(levels, dict) or not all(isinstance(levels.get(k), str) and levels[k].strip() for k in TEXT_LEVELS):
        return None
    return {level: levels[level].strip() for level in TEXT_LEVELS}


class LLMDescriber(Describer):
    """Paragraph (FILM) and three levels (MTIF) from the texts of the earlier backends (and the images, --llm-vision)."""

    name = "llm"

    @property
    def default_model(self) -> str:
        return DEFAULT_ENDPOINT_MODEL if self.options.llm_url else DEFAULT_LOCAL_MODEL

    @property
    def model_id(self) -> str:
        if self.options.llm_url:
            return self.options.llm_model or DEFAULT_ENDPOINT_MODEL
        return self.model_path or self.options.llm_model or self.options.model_ids.get(self.name) or DEFAULT_LOCAL_MODEL

    @property
    def local(self) -> bool:
        return not self.options.llm_url

    def _client(self):
        if not hasattr(self, "_cached_client"):
            o = self.options
            if o.llm_url:
                self._cached_client = EndpointClient(o.llm_url, self.model_id, o.llm_key_env, o.llm_timeout, o.llm_retries,
                                                     o.llm_max_tokens, o.llm_concurrency)
            else:
                model_id = o.llm_model or o.model_ids.get(self.name) or DEFAULT_LOCAL_MODEL
                self._cached_client = LocalLM(model_id, self.model_path, o)
        return self._cached_client

    def _requests(self, image: ImageInfo) -> list[tuple[str, list[dict]]]:
        """(field, messages) per request: the paragraph, then the levels (one JSON request, or one per level locally).

        Images go only to an endpoint (--llm-vision); a local text-only LM gets the text (the vlm backend sees them)."""
        vision = self.options.llm_vision and not self.local
        if vision:
            pictures, shown = paragraph_pictures(image)
            requests = [("paragraph", paragraph_messages(image, pictures, shown))]
        else:
            requests = [("paragraph", paragraph_messages(image))]
        if not self.options.llm_levels:
            return requests
        if vision:
            return requests + [("levels", levels_messages(image, *pair_pictures(image)))]
        if self.local:
            return requests + [(level, level_messages(image, level)) for level in TEXT_LEVELS]
        return requests + [("levels", levels_messages(image))]

    def cache_key(self, image: ImageInfo) -> str:
        material = json.dumps([self.options.llm_url or "local", self._requests(image)], sort_keys=True)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def _complete(self, request: tuple[str, list[dict]]) -> str:
        field, messages = request
        return self._client().complete(messages, self._max_tokens(field))

    def describe_all(self, images: list[ImageInfo]) -> list[dict]:
        """All requests of these images, up to --llm-concurrency at once against an endpoint or --batch-size prompts
        per generate call of a local model; texts in input order."""
        requests = [(image, request) for image in images for request in self._requests(image)]
        replies = self._replies([request for _, request in requests])
        answers: dict[int, list] = {id(image): [] for image in images}
        for (image, request), reply in zip(requests, replies):
            answers[id(image)].append((request, reply))
        return [self._texts(image, answers[id(image)]) for image in images]

    def _replies(self, requests: list[tuple[str, list[dict]]]) -> list[str]:
        if self.local:
            return self._local_replies(requests)
        workers = max(1, min(self.options.llm_concurrency, len(requests)))
        if workers == 1:
            return [self._complete(request) for request in requests]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(self._complete, requests))

    def _local_replies(self, requests: list[tuple[str, list[dict]]]) -> list[str]:
        """Requests with the same token limit (paragraphs; levels) go --batch-size at a time to the local model."""
        limits = [self._max_tokens(field) for field, _ in requests]
        replies: list[str] = [""] * len(requests)
        size = max(1, self.options.batch_size)
        for limit in dict.fromkeys(limits):
            same = [index for index, value in enumerate(limits) if value == limit]
            for start in range(0, len(same), size):
                chunk = same[start:start + size]
                for index, reply in zip(chunk, self._client().complete_many([requests[i][1] for i in chunk], limit)):
                    replies[index] = reply
        return replies

    def _max_tokens(self, field: str) -> int | None:
        return min(LEVEL_TOKENS, self.options.llm_max_tokens) if field in TEXT_LEVELS else None

    def describe(self, image: ImageInfo) -> dict:
        return self.describe_all([image])[0]

    def _texts(self, image: ImageInfo, answers: list) -> dict:
        """The checked texts of one image; an unusable reply is replaced by the stats text, with one warning."""
        found: dict[str, str] = {}
        problems: dict[str, str] = {}
        for (field, messages), reply in answers:
            if field == "levels":
                parsed = parse_levels(reply)
                if parsed is None:
                    problems["levels"] = "is not a JSON object with detail, structure, semantic"
                    continue
                candidates = list(parsed.items())
            else:
                candidates = [(field, clean(reply))]
            for name, text in candidates:
                problem = problem_with(text, prompt_text(messages))
                if problem:
                    problems[name] = problem
                else:
                    found[name] = text
        for what, problem in problems.items():
            self._fall_back(image, what, problem)
        wanted = ["paragraph", *(TEXT_LEVELS if self.options.llm_levels else ())]
        stats = self._stats(image) if any(name not in found for name in wanted) else {}
        texts = {"paragraph": found.get("paragraph") or stats["paragraph"]}
        if self.options.llm_levels:
            texts["levels"] = {level: found.get(level) or stats["levels"][level] for level in TEXT_LEVELS}
        return texts

    def _fall_back(self, image: ImageInfo, what: str, problem: str) -> None:
        label = "three-level answer" if what == "levels" else f"{what} {'text' if what in TEXT_LEVELS else ''}".strip()
        log.warn(f"{image.path}: the LLM's {label} {problem}; using the stats text for it")

    def _stats(self, image: ImageInfo) -> dict:
        """The offline describer's texts for this image: what replaces an unusable reply."""
        return DESCRIBERS.get("stats")(self.options).describe(image)
