"""Fuzzing every reader of a file fusekit accepts, in-process (hypothesis): any input gives a result or one
`FusekitError` (the one clean line the CLI prints), never another exception, a hang or a partial file.

Inputs are real files (DEV images, a description `describe` made, the bundled compact checkpoint, features and
semantics files written by fusekit's own writers, a `.pth` in the released layout) damaged in the ways files get
damaged: cut short, bytes flipped or inserted, replaced by noise; PNGs also with valid checksums around altered
header fields, and safetensors/JSON with structurally valid but wrong headers. Example counts are moderate so the
suite stays fast on a shared CPU; ``--hypothesis-show-statistics`` prints how many inputs each test tried.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import pair_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusekit.errors import FusekitError

# The suite runs a fixed, moderate sample (derandomized: the same inputs every run, so CI is stable);
# FUSEKIT_FUZZ_EXAMPLES=N runs a longer randomized pass of N inputs per test (checkpoint and .pth tests: 2/3 of N).
EXAMPLES = int(os.environ.get("FUSEKIT_FUZZ_EXAMPLES", "0")) or 120
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUSEKIT_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.timeout(300)
IR, VI = pair_paths("IVF", "MSRS", "00028N")


# ----------------------------------------------------------------------------------------------- damage


def _flip(seed: bytes, flips) -> bytes:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data)


def damaged(seed: bytes):
    """`seed` cut short, with bytes overwritten, with bytes inserted, or replaced by noise."""
    return st.one_of(
        st.integers(0, len(seed) - 1).map(lambda n: seed[:n]),
        st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(lambda f: _flip(seed, f)),
        st.tuples(st.integers(0, len(seed)), st.binary(min_size=1, max_size=64)).map(lambda t: seed[:t[0]] + t[1] + seed[t[0]:]),
        st.binary(max_size=300),
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_with_header(seed: bytes):
    """`seed` (a PNG) with its IHDR fields replaced and the checksum fixed, so decoders get past the CRC check."""
    body = seed[33:]
    fields = st.tuples(st.sampled_from([0, 1, 2, 3, 7, 8, 12, 100, 65535, 2**31 - 1]),
                       st.sampled_from([0, 1, 2, 3, 7, 8, 12, 100, 65535, 2**31 - 1]),
                       st.sampled_from([1, 2, 4, 8, 16, 3, 32]), st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
                       st.sampled_from([0, 1]), st.sampled_from([0, 1]), st.sampled_from([0, 1, 2]))
    return fields.map(lambda f: seed[:8] + _chunk(b"IHDR", struct.pack(">IIBBBBB", *f)) + body)


def _encoded(image: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def _crop(path: Path, colour: bool) -> np.ndarray:
    from fusekit.io.images import read_image

    image = read_image(path)[100:112, 200:216]
    return image if colour or image.ndim == 2 else image[..., 0].copy()


def _seeds() -> dict[str, bytes]:
    from fusekit.io.images import encode_png

    grey, colour = _crop(IR, False), _crop(VI, True)
    return {
        "png-grey": encode_png(grey), "png-colour": encode_png(colour),
        "png16-grey": encode_png(grey.astype(np.uint16) * 257), "png16-colour": encode_png(colour.astype(np.uint16) * 257),
        "jpeg": _encoded(colour, "JPEG"), "tiff": _encoded(colour, "TIFF"), "bmp": _encoded(grey, "BMP"),
    }


IMAGE_SEEDS = _seeds()


def _read_image_bytes(tmp_path: Path, data: bytes, suffix: str = ".png"):
    from fusekit.io.images import read_image

    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            image = read_image(path)
        except FusekitError:
            image = None
    assert not caught, [str(w.message) for w in caught]  # a Python warning is not the one clean line
    if image is None:
        return None
    assert isinstance(image, np.ndarray) and image.dtype in (np.uint8, np.uint16), image.dtype
    assert image.ndim in (2, 3) and image.size > 0 and (image.ndim == 2 or image.shape[2] == 3), image.shape
    return image


# ------------------------------------------------------------------------------------------------- images


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(IMAGE_SEEDS)))
def test_fuzz_read_image(tmp_path, data, kind):
    _read_image_bytes(tmp_path, data.draw(damaged(IMAGE_SEEDS[kind])))


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["png-grey", "png-colour", "png16-grey", "png16-colour"]))
def test_fuzz_read_png_header_fields(tmp_path, data, kind):
    _read_image_bytes(tmp_path, data.draw(png_with_header(IMAGE_SEEDS[kind])))


# ------------------------------------------------------------------------------------------- safetensors


def _safetensors_blob(tensors: dict, metadata: dict, kind: str) -> bytes:
    from fusekit.io.formats import write_safetensors

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.safetensors"
        write_safetensors(path, kind, tensors, metadata)
        return path.read_bytes()


def _json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=12))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def safetensors_header(seed: bytes):
    """`seed`'s tensor bytes behind a generated JSON header: wrong dtypes, shapes, offsets, metadata types."""
    (size,) = struct.unpack("<Q", seed[:8])
    header = json.loads(seed[8:8 + size])
    payload = seed[8 + size:]
    names = [name for name in header if name != "__metadata__"]

    def edited(change):
        target, field, value = change
        copy = json.loads(json.dumps(header))
        if target == "__metadata__":
            copy.setdefault("__metadata__", {})[field] = value
        elif target == "root":
            copy = value
        else:
            copy[names[target % len(names)]][field] = value
        text = json.dumps(copy).encode()
        return struct.pack("<Q", len(text)) + text + payload

    fields = st.sampled_from(["dtype", "shape", "data_offsets", "schema", "config", "model", "task", "text_dim"])
    targets = st.one_of(st.just("__metadata__"), st.just("root"), st.integers(0, 50))
    return st.tuples(targets, fields, _json_values()).map(edited)


def _text_features_seed() -> bytes:
    rng = np.random.default_rng(0)
    tensors = {"text": torch.from_numpy(rng.standard_normal((5, 16)).astype(np.float32))}
    return _safetensors_blob(tensors, {"encoder": "offline", "dim": "16", "task": "ivf"}, "text-features")


def _semantics_seed() -> bytes:
    tensors = {"mask": torch.zeros(8, 8), "text_semantics": torch.ones(3, 16)}
    return _safetensors_blob(tensors, {"task": "ivf"}, "semantics")


def _image_features_seed() -> bytes:
    return _safetensors_blob({"embed_a": torch.ones(8), "embed_b": torch.zeros(8)}, {"encoder": "clip"}, "image-features")


SAFETENSORS_SEEDS = {"text": _text_features_seed(), "semantics": _semantics_seed(), "image": _image_features_seed()}


def _read_features(tmp_path: Path, kind: str, data: bytes):
    from fusekit.guidance.semantics import read_semantics
    from fusekit.io.formats import read_image_features, read_text_features

    path = tmp_path / "input.safetensors"
    path.write_bytes(data)
    reader = {"text": read_text_features, "semantics": read_semantics, "image": read_image_features}[kind]
    try:
        tensors, metadata = reader(path)
    except FusekitError:
        return
    assert isinstance(metadata, dict) and all(isinstance(t, torch.Tensor) for t in tensors.values())


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(SAFETENSORS_SEEDS)))
def test_fuzz_feature_and_semantics_files(tmp_path, data, kind):
    seed = SAFETENSORS_SEEDS[kind]
    _read_features(tmp_path, kind, data.draw(st.one_of(damaged(seed), safetensors_header(seed))))


def _vlf_seed() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).standard_normal((1, 6, 768)).astype(np.float32))
    return buffer.getvalue()


@FUZZ
@given(data=st.data())
def test_fuzz_vlf_npy_text_features(tmp_path, data):
    from fusekit.io.formats import read_vlf_text_features

    path = tmp_path / "pair.npy"
    path.write_bytes(data.draw(damaged(_vlf_seed())))
    try:
        tensors, _ = read_vlf_text_features(path)
    except FusekitError:
        return
    assert tensors["text"].ndim == 2


@functools.cache
def compact():
    """(spec, bundled ivf checkpoint bytes, module) of the compact model: the seed of the checkpoint tests.

    Cached functions, not fixtures, so hypothesis's report of a failing input does not print them."""
    from fusekit.models import FUSION_MODELS
    from fusekit.models.checkpoints import build_model, config_from_metadata, read_weights

    spec = FUSION_MODELS.get("compact")
    seed = spec.bundled_weights("ivf")
    _, metadata = read_weights(seed, spec)
    return spec, Path(seed).read_bytes(), build_model(spec, config_from_metadata(spec, metadata.get("config"), "seed"))


@functools.cache
def released_pth() -> bytes:
    """The compact weights saved as a released `.pth` ({'model': state_dict} with DataParallel's prefix)."""
    _, _, module = compact()
    buffer = io.BytesIO()
    torch.save({"model": {f"module.{key}": value for key, value in module.state_dict().items()}}, buffer)
    return buffer.getvalue()


def _load_weights(tmp_path: Path, data: bytes, suffix: str):
    from fusekit.models.checkpoints import check_state, config_from_metadata, read_weights

    spec, _, module = compact()
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(data)
    try:
        state, metadata = read_weights(path, spec)
        config_from_metadata(spec, metadata.get("config"), str(path))
        check_state(state, module, str(path), spec.name)
    except FusekitError:
        return


@settings(FUZZ, max_examples=EXAMPLES * 2 // 3)
@given(data=st.data())
def test_fuzz_checkpoint_safetensors(tmp_path, data):
    seed = compact()[1]
    _load_weights(tmp_path, data.draw(st.one_of(damaged(seed[:4096]), safetensors_header(seed))), ".safetensors")


@settings(FUZZ, max_examples=EXAMPLES * 2 // 3)
@given(data=st.data())
def test_fuzz_released_pth(tmp_path, data):
    _load_weights(tmp_path, data.draw(damaged(released_pth())), ".pth")


# ------------------------------------------------------------------------------------------- JSON documents


@pytest.fixture(scope="module")
def description() -> bytes:
    from fusekit.guidance.describe import DescribeOptions, Pipeline
    from fusekit.io.formats import dump_json

    return dump_json(Pipeline(["stats"], DescribeOptions()).describe([str(IR), str(VI)], "ivf")).encode()


def _describe_and_encode(tmp_path: Path, data: bytes):
    from fusekit.guidance.text import encode_descriptions
    from fusekit.io.formats import read_descriptions

    path = tmp_path / "d.json"
    path.write_bytes(data)
    try:
        tensors, _ = encode_descriptions(read_descriptions(path), "offline", source=str(path))
    except FusekitError:
        return
    assert torch.isfinite(tensors["text"]).all()


def description_edits(seed: bytes):
    """The description with one field (top level, image, or texts) set to an arbitrary JSON value."""
    document = json.loads(seed)

    def edited(change):
        where, key, value = change
        copy = json.loads(seed)
        target = copy if where == "top" else copy["images"][0] if where == "image" else copy["images"][0]["texts"]
        target[key] = value
        return json.dumps(copy).encode()

    keys = st.sampled_from(sorted({*document, *document["images"][0], *document["images"][0]["texts"], "levels"}))
    return st.tuples(st.sampled_from(["top", "image", "texts"]), keys, _json_values()).map(edited)


@FUZZ
@given(data=st.data())
def test_fuzz_descriptions_json(tmp_path, description, data):
    _describe_and_encode(tmp_path, data.draw(st.one_of(damaged(description), description_edits(description))))


def _manifest_lines():
    value = st.one_of(st.just(str(IR)), st.just(str(VI)), st.just("missing.png"), _json_values())
    entry = st.dictionaries(st.sampled_from(["a", "b", "fused", "name", "text", "out", "mask"]), value, max_size=5)
    line = st.one_of(entry.map(json.dumps), _json_values().map(json.dumps), st.text(max_size=20))
    return st.lists(line, max_size=5).map(lambda lines: "\n".join(lines).encode())


@FUZZ
@given(data=st.data(), roles=st.sampled_from([("a", "b"), ("fused", "a", "b")]))
def test_fuzz_manifest(tmp_path, data, roles):
    from fusekit.io.pairs import read_manifest

    seed = (json.dumps({"name": "p", "a": str(IR), "b": str(VI), "fused": str(IR)}) + "\n").encode()
    path = tmp_path / "m.jsonl"
    path.write_bytes(data.draw(st.one_of(damaged(seed), _manifest_lines())))
    try:
        selection = read_manifest(path, roles)
    except FusekitError:
        return
    for item in selection.items:
        assert isinstance(item.name, str) and all(isinstance(item.paths[role], str) for role in roles)
