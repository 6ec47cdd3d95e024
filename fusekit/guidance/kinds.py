"""The kinds of guidance a fusion model can take, in one table: what `fuse` and `train` both read, check and make.

A model's spec names its guidance by these words (``FusionModelSpec.guidance``):

- ``text``         → ``text`` [L, D]  (a text-features file, or a VLF ``.npy`` [1, L, D] / [L, D])
- ``text_levels``  → ``text_detail``, ``text_structure``, ``text_semantic`` [L, D]  (a text-features file)
- ``image_embeds`` → ``image_embed_a``, ``image_embed_b`` [D]  (an image-features file)
- ``semantics``    → ``mask`` [H, W] (spatial: cropped with the images) and ``text_semantics`` [L, D]

`read_guidance` reads one file of a kind and checks its tensors (present, of the right rank);
`check_features` refuses features of another encoder or width than the weights expect; `check_hashes` notices
features made from other images. Every problem is one user error naming the file and the command to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import log
from ..errors import FusekitError
from ..io.formats import read_safetensors, read_vlf_text_features


@dataclass(frozen=True)
class GuidanceKind:
    """One kind of guidance: its file, the option and manifest field naming it, its tensors and their ranks."""

    word: str  # the FusionModelSpec.guidance word
    file_kind: str  # fusekit.io.formats kind of its files
    option: str  # the fuse/train option giving a file or folder of them
    manifest_field: str  # a manifest line's field naming the pair's own file
    tensors: tuple[str, ...]  # what the model's forward takes
    ranks: tuple[int, ...]  # each tensor's rank, without the batch axis
    suffixes: tuple[str, ...]  # file suffixes found in a folder of per-pair files
    made_by: str  # the command that writes such files
    features: str | None  # "text" / "image": whose encoder and width the weights pin (checkpoint metadata prefix)
    spatial: tuple[str, ...] = ()  # tensors with the images' height and width

    @property
    def words(self) -> str:
        return {"text-features": "text features", "image-features": "image features", "semantics": "semantics"}[self.file_kind]


KINDS: dict[str, GuidanceKind] = {
    "text": GuidanceKind("text", "text-features", "--text", "text", ("text",), (2,), (".safetensors", ".npy"),
                         "fusekit encode-text", "text"),
    "text_levels": GuidanceKind("text_levels", "text-features", "--text", "text", ("text_detail", "text_structure", "text_semantic"),
                                (2, 2, 2), (".safetensors",), "fusekit encode-text", "text"),
    "image_embeds": GuidanceKind("image_embeds", "image-features", "--image-features", "image_features", ("image_embed_a", "image_embed_b"),
                                 (1, 1), (".safetensors",), "fusekit encode-image", "image"),
    "semantics": GuidanceKind("semantics", "semantics", "--semantics", "semantics", ("mask", "text_semantics"), (2, 2), (".safetensors",),
                              "fusekit semantics", None, spatial=("mask",)),
}
SPATIAL_GUIDANCE = tuple(name for kind in KINDS.values() for name in kind.spatial)
ALIASES = {"image_embed_a": "embed_a", "image_embed_b": "embed_b"}  # the short names image-features files may use


def kind_of(word: str) -> GuidanceKind:
    return KINDS[word]


def tensor_names(words) -> list[str]:
    """The guidance tensors a model with these `spec.guidance` words takes, in order."""
    return [name for word in words for name in KINDS[word].tensors]


def read_guidance(kind: GuidanceKind, path: str | Path, model: str = "the model") -> tuple[dict, dict]:
    """(tensors the kind needs as float32 torch tensors, metadata) of one file; a missing tensor or one of the
    wrong rank is a user error naming the file."""
    path = str(path)
    if path.endswith(".npy"):
        if kind.word != "text":
            raise FusekitError(f"{path}: a .npy file holds only FILM/VLF text features", f"give {kind.option} safetensors files from {kind.made_by}")
        tensors, metadata = read_vlf_text_features(path)
    else:
        tensors, metadata = read_safetensors(path, kind.file_kind)
    picked = {}
    for name, rank in zip(kind.tensors, kind.ranks):
        tensor = tensors.get(name, tensors.get(ALIASES.get(name, "")))
        if tensor is None:
            raise FusekitError(f"{path} has no {name!r} tensor, which {model} needs", f"re-run {kind.made_by}")
        if rank == 1 and tensor.ndim == 2 and tensor.shape[0] == 1:  # one embedding stored as [1, D]
            tensor = tensor[0]
        if tensor.ndim != rank:
            raise FusekitError(f"{path}: {name!r} is {list(tensor.shape)}, but {model} needs a rank-{rank} tensor",
                               f"re-run {kind.made_by} on these images")
        picked[name] = tensor.float()
    return picked, metadata


def check_features(kind: GuidanceKind, path: str, tensors: dict, metadata: dict, expected: dict, model: str) -> None:
    """Refuse features of another encoder or width than the weights expect (`expected`: the checkpoint metadata,
    ``text_encoder`` / ``text_dim`` / ``image_encoder`` / ``image_dim``), saying what to run instead."""
    if kind.features is None:
        return
    need_encoder, need_dim = expected.get(f"{kind.features}_encoder"), expected.get(f"{kind.features}_dim")
    encoder = metadata.get("encoder")
    if need_encoder and encoder and encoder != need_encoder:
        raise FusekitError(f"{path} holds {encoder!r} features, but model {model!r} with these weights needs {need_encoder!r} features",
                           f"run {kind.made_by} --encoder {need_encoder}")
    dims = {int(t.shape[-1]) for t in tensors.values() if t.ndim >= 1}
    if need_dim and dims and dims != {int(need_dim)}:
        raise FusekitError(
            f"{path} holds {'/'.join(map(str, sorted(dims)))}-d features, but model {model!r} with these weights needs {need_dim}-d",
            f"run {kind.made_by} --encoder {need_encoder or 'the encoder the weights were trained with'}",
        )


def check_hashes(path: str, metadata: dict, hashes: tuple[str, str], name: str) -> None:
    """Warn when the features were made from other images; refuse them when A and B were swapped."""
    want = (metadata.get("image_sha256_a"), metadata.get("image_sha256_b"))
    if not all(want) or want == hashes:
        return
    if want == hashes[::-1]:
        raise FusekitError(f"{path} was made with A and B swapped for pair {name!r}", "re-run encode with the images in the task's A/B order")
    log.warn(f"{name}: {path} was computed from other images (hashes differ)")
