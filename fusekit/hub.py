"""Loading pretrained models and tokenizers from a local folder or the Hugging Face cache, with one-line errors.

With ``--model-path`` only that folder is read. With a model id the Hugging Face cache is used; a download is
attempted only when the hub is not in offline mode (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``), so an offline
machine gets an immediate, clear message instead of a network wait.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import log
from .errors import FusekitError


def hub_offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def load_pretrained(loader, model_id: str, model_path: str | None, what: str, **kwargs):
    """`loader(source, local_files_only=..., **kwargs)` (a `from_pretrained`), errors turned into user errors."""
    if model_path:
        if not Path(model_path).is_dir():
            raise FusekitError(f"model folder for the {what} not found: {model_path}", "give the folder that holds config.json and the weights")
        source, local_only = model_path, True
    else:
        source, local_only = model_id, hub_offline()
    log.verbose(f"loading {what} from {source}")
    quiet_transformers()
    try:
        return loader(source, local_files_only=local_only, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug(f"{type(exc).__name__}: {exc}")
        if model_path:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise FusekitError(f"cannot load {what} from {model_path} ({reason})",
                               "the folder needs config.json, the weights and the tokenizer/processor files saved with save_pretrained") from exc
        how = "download it once with `hf download " + model_id + "`" + (" (the hub is in offline mode here)" if local_only else "")
        raise FusekitError(f"{what} {model_id!r} is not in the Hugging Face cache", f"{how}, or give --model-path DIR") from exc
    except RuntimeError as exc:
        if "ignore_mismatched_sizes" not in str(exc) and "size mismatch" not in str(exc):
            raise
        log.debug(f"{type(exc).__name__}: {exc}")
        raise FusekitError(f"cannot load {what} from {source}: its weights have other sizes than its config.json says",
                           "the weights and config.json come from different models; save the folder again with save_pretrained") from exc


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
