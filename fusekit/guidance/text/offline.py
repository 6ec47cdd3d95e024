"""The offline text encoder: deterministic hashed-token embeddings, no weights, any machine.

Each token (a lower-cased word, number or punctuation mark) gets a vector that is the sum of pseudo-random
Gaussian vectors seeded by hashes of the whole word and of its character trigrams (fastText-style, so "hotspot"
and "hotspots" land close together), plus a small sinusoidal position code so token order is visible. Rows are
scaled to unit RMS per element, the scale of BLIP-2's layer-normalised token states, so FILM-shaped models see
inputs of the size they expect. A leading start token stands in for BERT's [CLS]. Same text → same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import re

import numpy as np

from .base import TextEncoder

MODEL_ID = "fusekit-hashed-trigram-1"
TOKEN_PATTERN = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*|[^\sa-z0-9]")
START_TOKEN = "[start]"
POSITION_SCALE = 0.25


def tokenize(text: str) -> list[str]:
    return TOKEN_PATTERN.findall(text.lower())


@functools.lru_cache(maxsize=200_000)
def _piece_vector(piece: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(piece.encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def _pieces(token: str) -> list[str]:
    if not token[0].isalpha() or len(token) <= 3:
        return [f"w:{token}"]
    padded = f"<{token}>"
    return [f"w:{token}"] + [f"g:{padded[i:i + 3]}" for i in range(len(padded) - 2)]


@functools.lru_cache(maxsize=200_000)
def token_vector(token: str, dim: int) -> np.ndarray:
    pieces = _pieces(token)
    # The whole word carries as much energy as all its trigrams together: exact matches stay the strongest signal.
    vector = _piece_vector(pieces[0], dim) * np.float32(np.sqrt(max(1, len(pieces) - 1)))
    for piece in pieces[1:]:
        vector = vector + _piece_vector(piece, dim)
    return vector / np.float32(np.sqrt(np.mean(vector.astype(np.float64) ** 2)))


@functools.lru_cache(maxsize=8)
def position_codes(length: int, dim: int) -> np.ndarray:
    positions = np.arange(length, dtype=np.float64)[:, None]
    rates = 1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    codes = np.zeros((length, dim))
    codes[:, 0::2] = np.sin(positions * rates)
    codes[:, 1::2] = np.cos(positions * rates[: dim // 2])
    return (POSITION_SCALE * codes).astype(np.float32)


def embed(text: str, dim: int = 768, max_tokens: int = 512) -> np.ndarray:
    """[tokens, dim] float32 embedding of `text` (start token first, truncated to `max_tokens`)."""
    tokens = [START_TOKEN] + tokenize(text)
    tokens = tokens[:max_tokens]
    rows = np.stack([token_vector(token, dim) for token in tokens])
    rows = rows + position_codes(max_tokens, dim)[: len(tokens)]
    rms = np.sqrt(np.mean(rows.astype(np.float64) ** 2, axis=1, keepdims=True))
    return (rows / rms).astype(np.float32)


class OfflineEncoder(TextEncoder):
    """Deterministic hashed-token embeddings; `--dim` sets the width (768 by default, like BLIP-2)."""

    name = "offline"
    default_model = MODEL_ID

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dim(self) -> int:
        return self.options.dim

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [embed(text, self.options.dim, self.options.max_tokens) for text in texts]
