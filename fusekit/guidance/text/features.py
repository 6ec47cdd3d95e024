"""From a descriptions document to text-features tensors, concatenating the pair's tokens as FILM does.

Per image the encoded text is its ``paragraph`` (FILM); an image without one is described by its caption, dense
region captions and segments joined into sentences. ``text`` is A's tokens followed by B's; ``text_a`` /
``text_b`` keep them apart; when every image has MTIF's three levels, ``text_detail`` / ``text_structure`` /
``text_semantic`` hold each level's pair-concatenated tokens. A document's ``prompt`` (the user's own words,
`fusekit describe/fuse --prompt`) is appended to every image's text, paragraph and levels alike, followed by the
describer's sentence for any degradation it names (`fusekit.guidance.describe.prompt_findings`).
"""

from __future__ import annotations

import numpy as np

from ...errors import FusekitError
from ...io.formats import TEXT_LEVELS, dump_json, sha256_bytes, validate_descriptions
from .base import TEXT_ENCODERS, TextEncoder, TextOptions


def image_text(texts: dict) -> str:
    """The text FILM encodes for one image: the paragraph, else its caption, regions and segments as sentences."""
    paragraph = texts.get("paragraph")
    if isinstance(paragraph, str) and paragraph.strip():
        return paragraph.strip()
    sentences = []
    caption = texts.get("caption")
    if isinstance(caption, str) and caption.strip():
        sentences.append(caption.strip().rstrip(".") + ".")
    regions = [r.get("caption", "").strip() for r in texts.get("regions") or [] if isinstance(r, dict)]
    regions = [r for r in regions if r]
    if regions:
        sentences.append("Regions: " + "; ".join(regions) + ".")
    segments = texts.get("segments") or []
    if segments:
        sentences.append(f"{len(segments)} segments.")
    return " ".join(sentences)


def _prompt_text(document: dict) -> str:
    """The user's words, followed by what they say is wrong in the `stats` describer's own sentence (the words the
    bundled model learnt its findings from, `fusekit.guidance.describe.prompt_findings`); "" without a prompt."""
    from ..describe.prompt_findings import prompt_findings

    prompt = document.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return ""
    paths = {image["role"]: str(image["path"]) for image in document["images"]}  # a validated document
    return f"{prompt.strip()} {prompt_findings(prompt, document['task'], paths)}".strip()


def _with_prompt(text: str, prompt: str) -> str:
    return f"{text} {prompt}" if prompt else text


def _text_of(image: dict, index: int, level: str | None, source: str) -> str:
    texts = image["texts"]
    if level is None:
        text = image_text(texts)
    else:
        text = (texts.get("levels") or {}).get(level)
        text = text.strip() if isinstance(text, str) else ""
    if not text:
        what = f"no {level}-level text" if level else "no text (paragraph, caption or regions)"
        raise FusekitError(f"{source}: images[{index}] (role {image['role']}) has {what}", "describe it again, e.g. fusekit describe --backend stats")
    return text


def get_encoder(encoder: "str | TextEncoder", options: TextOptions | None = None) -> TextEncoder:
    if isinstance(encoder, TextEncoder):
        return encoder
    return TEXT_ENCODERS.get(encoder)(options or TextOptions())


def encode_descriptions(document: dict, encoder: "str | TextEncoder" = "offline", options: TextOptions | None = None,
                        source: str = "descriptions", as_numpy: bool = False) -> tuple[dict, dict]:
    """(tensors, metadata) of the text-features file for one descriptions document (one image or a pair).

    The tensors are torch tensors, or numpy arrays with `as_numpy` (all a file writer needs: the offline encoder
    then runs without importing torch)."""
    return encode_many([(document, source)], encoder, options, as_numpy)[0]


def encode_many(documents: list[tuple[dict, str]], encoder: "str | TextEncoder" = "offline", options: TextOptions | None = None,
                as_numpy: bool = False) -> list[tuple[dict, dict]]:
    """`encode_descriptions` of several (document, source) at once: every text of every document goes to the encoder
    in one call, so a model encoder runs them --batch-size at a time (encode-text's batches of pairs)."""
    encoder = get_encoder(encoder, options)
    wanted = [_texts_wanted(document, source) for document, source in documents]
    flat = [text for _, groups in wanted for group in groups.values() for text in group]
    encoded = iter(encoder.encode(flat) if flat else [])
    results = []
    for (document, _), (images, groups) in zip(documents, wanted):
        tokens = {key: [next(encoded) for _ in group] for key, group in groups.items()}
        results.append(_features(document, images, tokens, encoder, as_numpy))
    return results


def _texts_wanted(document: dict, source: str) -> tuple[list[dict], dict[str | None, list[str]]]:
    """A checked document's images in role order and the texts to encode: per image its paragraph (key None) and,
    when every image has MTIF's levels, each level's."""
    if not isinstance(document, dict):
        raise FusekitError(f"{source} is not a fusekit descriptions JSON", "make one with fusekit describe")
    validate_descriptions(document, source)
    images = sorted(document["images"], key=lambda image: image["role"])
    roles = [image["role"] for image in images]
    if len(set(roles)) != len(roles):
        raise FusekitError(f"{source}: two images share role {roles[0]!r}", "re-run fusekit describe")
    levels = all(isinstance(image["texts"].get("levels"), dict) and image["texts"]["levels"] for image in images)
    prompt = _prompt_text(document)
    return images, {level: [_with_prompt(_text_of(image, i, level, source), prompt) for i, image in enumerate(images)]
                    for level in [None, *(TEXT_LEVELS if levels else ())]}


def _features(document: dict, images: list[dict], tokens: dict, encoder: TextEncoder, as_numpy: bool) -> tuple[dict, dict]:
    """(tensors, metadata) of one document from its encoded texts (`tokens`: as `_texts_wanted` keys them)."""
    roles = [image["role"] for image in images]
    paragraphs = tokens[None]
    tensors = {f"text_{role}": states for role, states in zip(roles, paragraphs)}
    tensors["text"] = _concatenate(paragraphs)
    for level in TEXT_LEVELS:
        if level in tokens:
            tensors[f"text_{level}"] = _concatenate(tokens[level])
    metadata = {
        "encoder": encoder.name,
        "encoder_model": encoder.model_id,
        "dim": str(encoder.dim),
        "task": document["task"],
        "descriptions_sha256": sha256_bytes(dump_json(document).encode("utf-8")),
        "tokens": json_tokens(roles, paragraphs),
    }
    for image in images:
        metadata[f"image_sha256_{image['role']}"] = image["sha256"]
    if document.get("name"):
        metadata["name"] = str(document["name"])
    return _as_arrays(tensors, as_numpy), metadata


def _concatenate(arrays: list):
    """The tokens of several texts one after the other, in the library the encoder made them with."""
    if isinstance(arrays[0], np.ndarray):
        return np.concatenate(arrays, axis=0)
    import torch

    return torch.cat(arrays, dim=0)


def _as_arrays(tensors: dict, as_numpy: bool) -> dict:
    """Every tensor as numpy (`as_numpy`) or torch, whichever the encoder produced."""
    if as_numpy:
        return {name: value if isinstance(value, np.ndarray) else value.numpy() for name, value in tensors.items()}
    if not any(isinstance(value, np.ndarray) for value in tensors.values()):
        return tensors
    import torch

    return {name: torch.from_numpy(value) if isinstance(value, np.ndarray) else value for name, value in tensors.items()}


def json_tokens(roles: list[str], tensors: list) -> str:
    """Token counts per image, e.g. ``{"a": 120, "b": 98}``, so a reader can split ``text`` without text_a/b."""
    import json

    return json.dumps({role: int(t.shape[0]) for role, t in zip(roles, tensors)}, sort_keys=True)
