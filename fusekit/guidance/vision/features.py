"""From image files to the image-features tensors and metadata (``image_embed_a`` / ``image_embed_b``)."""

from __future__ import annotations

from ...errors import FusekitError
from ...io.formats import ROLES, sha256_file
from ...io.images import read_image, rgb_of
from .base import IMAGE_ENCODERS, ImageEncoder, ImageOptions


def get_image_encoder(encoder: "str | ImageEncoder" = "clip", options: ImageOptions | None = None) -> ImageEncoder:
    if isinstance(encoder, ImageEncoder):
        return encoder
    return IMAGE_ENCODERS.get(encoder)(options or ImageOptions())


def image_features(paths: list[str], encoder: "str | ImageEncoder" = "clip", options: ImageOptions | None = None) -> tuple[dict, dict]:
    """(tensors, metadata) of an image-features file for one image (role a) or a pair (a, b)."""
    return image_features_many([paths], encoder, options)[0]


def image_features_many(groups: list[list[str]], encoder: "str | ImageEncoder" = "clip",
                        options: ImageOptions | None = None) -> list[tuple[dict, dict]]:
    """`image_features` of several pairs with one `embed` call: all their images go through the encoder together
    (encode-image --batch-size)."""
    for paths in groups:
        if not 1 <= len(paths) <= 2:
            raise FusekitError(f"expected one image or a pair, got {len(paths)} images", "give A and B")
        if any(str(path) == "-" for path in paths):
            raise FusekitError("images are read from files, not stdin", "give the image paths (their hashes go into the metadata)")
    encoder = get_image_encoder(encoder, options)
    embeds = iter(encoder.embed([rgb_of(read_image(path)) for paths in groups for path in paths]))
    results = []
    for paths in groups:
        tensors = {f"image_embed_{role}": next(embeds) for role in ROLES[: len(paths)]}
        metadata = {"encoder": encoder.name, "encoder_model": encoder.model_id, "dim": str(encoder.dim)}
        for role, path in zip(ROLES, paths):
            metadata[f"image_sha256_{role}"] = sha256_file(path)
        results.append((tensors, metadata))
    return results


def encode_images(paths: list[str], encoder: "str | ImageEncoder" = "clip", model_path: str | None = None,
                  device: str = "auto", precision: str = "fp32") -> dict:
    """``{"image_embed_a": [D], "image_embed_b": [D]}`` for a pair (just ``image_embed_a`` for one image)."""
    options = ImageOptions(device=device, precision=precision, model_path=model_path)
    return image_features(list(paths), encoder, options)[0]
