"""Loading pretrained models and tokenizers from a local folder, a GGUF file or the Hugging Face cache, with one-line errors.

With ``--model-path`` only that folder (or ``.gguf`` file, read through transformers' GGUF support, which needs the
``gguf`` extra) is read. With a model id the Hugging Face cache is used; a download is attempted only when the hub
is not in offline mode (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``) and answers a quick probe, so an offline
machine gets a clear message within seconds instead of a minute of hub retries. Before the weights are built, the
folder's ``config.json`` ``model_type`` is checked against what the backend expects: a BERT folder given to a CLIP
encoder is refused in one line instead of becoming a randomly initialised CLIP.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import log
from .errors import FusekitError

HUB_PROBE_SECONDS = 3.0


def hub_offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


@functools.lru_cache(maxsize=4)
def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the hub answers at all within `timeout` s (any HTTP status counts): no answer = no download tried.

    Asked once per run (every model of the run sees the same answer)."""
    import httpx

    try:
        httpx.head(hub_endpoint(), timeout=timeout)
        return True
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class Source:
    """Where one model is read from: `name` for from_pretrained, plus the GGUF file inside it when there is one."""

    name: str
    local_only: bool
    gguf_file: str | None = None
    unreachable: bool = False  # the hub did not answer the probe

    def kwargs(self) -> dict:
        return {"local_files_only": self.local_only, **({"gguf_file": self.gguf_file} if self.gguf_file else {})}


def resolve_source(model_id: str, model_path: str | None, what: str) -> Source:
    """The folder, GGUF file or hub id to load, after checking that a local path exists (and GGUF can be read)."""
    if model_path:
        path = Path(model_path)
        if path.is_file() and path.suffix.lower() == ".gguf":
            require_gguf(what)
            return Source(str(path.parent), True, path.name)
        if not path.is_dir():
            raise FusekitError(f"model folder for the {what} not found: {model_path}",
                               "give the folder that holds config.json and the weights, or a .gguf file")
        return Source(model_path, True)
    if hub_offline():
        return Source(model_id, True)
    if not hub_reachable():
        log.verbose(f"the hub at {hub_endpoint()} does not answer; using the local cache only")
        return Source(model_id, True, unreachable=True)
    return Source(model_id, False)


def require_gguf(what: str) -> None:
    try:
        import accelerate  # noqa: F401  (transformers needs it to place de-quantised GGUF tensors)
        import gguf  # noqa: F401
    except ImportError as exc:
        raise FusekitError(f"reading the {what} from a .gguf file needs the gguf and accelerate packages",
                           "pip install 'fusekit[gguf]'") from exc


def model_type_of(source: Source) -> str | None:
    """config.json's `model_type` (the GGUF header's architecture for a GGUF file); None when it cannot be read."""
    if source.gguf_file:
        return None  # transformers maps the GGUF architecture itself; any causal LM is acceptable there
    config_path = Path(source.name) / "config.json"
    if not config_path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source.name, "config.json")
        except Exception:  # not a valid repo id: the loader says so below
            cached = None
        if not isinstance(cached, str):
            return None
        config_path = Path(cached)
    try:
        return json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def check_model_type(source: Source, expect: tuple[str, ...], what: str, shown: str) -> None:
    found = model_type_of(source)
    if expect and found and found not in expect:
        raise FusekitError(f"{shown} holds a {found!r} model, not a {what} ({' or '.join(map(repr, expect))})",
                           "give the folder of the right model, or choose the backend or encoder that matches it")


def load_pretrained(loader, model_id: str, model_path: str | None, what: str, expect: tuple[str, ...] = (), **kwargs):
    """`loader(source, local_files_only=..., **kwargs)` (a `from_pretrained`), errors turned into user errors.

    `expect`: the config.json `model_type` values this backend can use (checked before anything is built)."""
    source = resolve_source(model_id, model_path, what)
    check_model_type(source, expect, what, model_path or repr(model_id))
    log.verbose(f"loading {what} from {model_path or source.name}")
    quiet_transformers()
    try:
        return loader(source.name, **source.kwargs(), **kwargs)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        log.debug(f"{type(exc).__name__}: {exc}")
        if "ignore_mismatched_sizes" in str(exc) or "size mismatch" in str(exc):
            raise FusekitError(f"cannot load {what} from {model_path or source.name}: its weights have other sizes than its config.json says",
                               "the weights and config.json come from different models; save the folder again with save_pretrained") from exc
        if model_path:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise FusekitError(f"cannot load {what} from {model_path} ({reason})",
                               "the folder needs config.json, the weights and the tokenizer/processor files saved with "
                               "save_pretrained (or give a .gguf file)") from exc
        if source.unreachable:
            how = f"the hub at {hub_endpoint()} does not answer: download it once with `hf download {model_id}` where it does"
        else:
            how = "download it once with `hf download " + model_id + "`" + (" (the hub is in offline mode here)" if source.local_only else "")
        raise FusekitError(f"{what} {model_id!r} is not in the Hugging Face cache", f"{how}, or give --model-path DIR") from exc


def quiet_transformers() -> None:
    """Keep transformers' own warnings and progress bars off stderr unless debugging (-vv)."""
    if log.settings.verbosity >= 2:
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def read_json_file(folder: str | None, name: str) -> dict:
    """A JSON file saved beside the weights (e.g. preprocessor_config.json), or {} when absent."""
    if not folder:
        return {}
    path = Path(folder) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def model_device(options) -> tuple:
    """(torch.device, torch.dtype) from the options' --device / --precision."""
    from .devices import resolve_device, resolve_precision

    device = resolve_device(options.device)
    return device, resolve_precision(options.precision, device)
