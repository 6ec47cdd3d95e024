"""The fuzz rule through the real CLI, for a handful of damaged inputs (each one a subprocess, so few): one clean
line (`fusekit <command>: error: ...`), a non-zero exit, no traceback or Python warning, and no output file, not
even a temporary one. The in-process fuzzing of every reader is tests/test_fuzz_readers.py."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
import torch
from conftest import pair_paths, run_fusekit

from fusekit.io.formats import write_safetensors

IR, VI = pair_paths("IVF", "MSRS", "00028N")


def _png_claiming(width: int, height: int, depth: int, colour: int) -> bytes:
    """A real PNG whose IHDR (checksum fixed) claims another size and pixel format than its data holds."""
    data = IR.read_bytes()
    body = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return data[:8] + struct.pack(">I", 13) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[33:]


def _flipped(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:]


def _text_features(tmp_path) -> bytes:
    path = tmp_path / "seed.safetensors"
    write_safetensors(path, "text-features", {"text": torch.ones(4, 768)}, {"encoder": "offline", "dim": "768", "task": "ivf"})
    return path.read_bytes()


def _description(field: str, value) -> bytes:
    """A real description with one of its first image's texts replaced."""
    from fusekit.guidance.describe import DescribeOptions, Pipeline

    document = Pipeline(["stats"], DescribeOptions()).describe([str(IR), str(VI)], "ivf")
    document["images"][0]["texts"][field] = value
    return json.dumps(document).encode()  # Python writes float("inf") as the non-JSON literal Infinity


CASES = {
    "truncated image": ("fuse", lambda t: IR.read_bytes()[:700], "{input}.png", ["fuse", "{input}", VI, "--task", "ivf", "--model", "gff", "-o", "{out}.png"]),
    "image header claims 2^31 rows": ("fuse", lambda t: _png_claiming(1, 2**31 - 1, 8, 0), "{input}.png", ["fuse", "{input}", VI, "--task", "ivf", "--model", "gff", "-o", "{out}.png"]),
    "16-bit colour header on 8-bit data": ("fuse", lambda t: _png_claiming(640, 480, 16, 2), "{input}.png", ["fuse", IR, "{input}", "--task", "ivf", "--model", "gff", "-o", "{out}.png"]),
    "checkpoint with a flipped header byte": ("fuse", lambda t: _flipped(_bundled(), 20), "{input}.safetensors", ["fuse", IR, VI, "--task", "ivf", "--model", "compact", "--weights", "{input}", "-o", "{out}.png"]),
    "released .pth cut short": ("models import", lambda t: _released_pth()[:5000], "{input}.pth", ["models", "import", "{input}", "--model", "compact", "--task", "ivf", "-o", "{out}.safetensors"]),
    "text features with noise for tensors": ("fuse", lambda t: _text_features(t)[:200] + b"\x00" * 17, "{input}.safetensors", ["fuse", IR, VI, "--task", "ivf", "--model", "compact", "--text", "{input}", "-o", "{out}.png"]),
    "descriptions with levels as a list": ("encode-text", lambda t: _description("levels", ["not", "an", "object"]), "{input}.json", ["encode-text", "{input}", "-o", "{out}.safetensors"]),
    "descriptions with Infinity": ("encode-text", lambda t: _description("mean", float("inf")), "{input}.json", ["encode-text", "{input}", "-o", "{out}.safetensors"]),
    "manifest with a number for a path": ("metrics", lambda t: json.dumps({"fused": 3, "a": str(IR), "b": str(VI)}).encode(), "{input}.jsonl", ["metrics", "--manifest", "{input}", "-o", "{out}.json"]),
}


def _bundled() -> bytes:
    from fusekit.models import FUSION_MODELS

    return open(FUSION_MODELS.get("compact").bundled_weights("ivf"), "rb").read()


def _released_pth() -> bytes:
    import io

    from safetensors.torch import load

    buffer = io.BytesIO()
    torch.save({"model": {f"module.{k}": v for k, v in load(_bundled()).items()}}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_input_gives_one_clean_line_and_no_output(tmp_path, case):
    command, make, input_name, argv = CASES[case]
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    source = inputs / input_name.format(input="damaged")
    source.write_bytes(make(tmp_path))
    args = [str(a).format(input=source, out=outputs / "result") if isinstance(a, str) else a for a in argv]
    result = run_fusekit(*args, timeout=300)
    stderr = result.stderr.decode()
    assert result.returncode != 0, stderr
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"fusekit {command}: error: "), stderr
    assert "internal error" not in stderr, stderr
    assert not any(outputs.iterdir()), list(outputs.iterdir())
