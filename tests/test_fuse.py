"""`fusekit fuse` end to end on real DEV pairs of every task, with the golden FILM weights (random weights in the
released layout) and text features of the released shape ([L, 768]).

Images are real pairs cropped to small sizes so FILM runs in about a second per pair on the CPU.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import GOLDEN, assert_user_error, pair_paths, run_fusekit
from fusekit.io.formats import sha256_file, write_safetensors
from fusekit.io.images import read_image, to_grey
from fusekit.models.checkpoints import load_model
from fusekit.app.fuse import chroma_for, default_model, film_postprocess, is_colour

WEIGHTS = GOLDEN / "film" / "film_case_a_weights.safetensors"
FILM = ("--model", "film", "--weights", WEIGHTS)


def crop_pair(task, dataset, name, folder, size=(72, 56), left_top=(100, 80), stem=None):
    """Real pair → cropped copies in folder/a, folder/b (named `stem`), returned as paths."""
    paths = []
    for role, source in zip("ab", pair_paths(task, dataset, name)):
        image = Image.open(source)
        left, top = min(left_top[0], image.width - size[0]), min(left_top[1], image.height - size[1])
        target = folder / role / f"{stem or name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        image.crop((left, top, left + size[0], top + size[1])).save(target)
        paths.append(target)
    return paths


def text_features(path, a, b, tokens=8, encoder="blip2", dim=768, seed=0):
    """A text-features file of the released shape, tied to the pair by its image hashes."""
    text = torch.from_numpy(np.random.default_rng(seed).standard_normal((tokens, dim)).astype(np.float32))
    write_safetensors(path, "text-features", {"text": text}, {
        "encoder": encoder, "dim": str(dim), "image_sha256_a": sha256_file(a), "image_sha256_b": sha256_file(b),
    })
    return path


def ok(result):
    assert result.returncode == 0, result.stderr.decode()
    return result


def mode_and_size(path):
    with Image.open(path) as image:
        return image.mode, image.size


def direct_film(a, b, text):
    """The released pipeline written out: grey inputs (rounded BT.601 / 255), FILM, raw output."""
    module, _ = load_model("film", WEIGHTS, "ivf")
    grey = [torch.from_numpy(to_grey(read_image(p)) / np.float32(255))[None, None] for p in (a, b)]
    with torch.inference_mode():
        return module(*grey, text[None]).numpy()[0, 0]


def test_ivf_folders_batched_colour_grey_and_film_postprocessing(tmp_path):
    a1, b1 = crop_pair("IVF", "MSRS", "00028N", tmp_path)
    a2, b2 = crop_pair("IVF", "RoadScene", "FLIR_08858", tmp_path)
    texts = tmp_path / "text"
    texts.mkdir()
    text_features(texts / "00028N.safetensors", a1, b1)
    text_features(texts / "FLIR_08858.safetensors", a2, b2, seed=1)
    out = tmp_path / "out"
    summary = tmp_path / "summary.json"
    ok(run_fusekit("fuse", tmp_path / "a", tmp_path / "b", "--task", "ivf", *FILM, "--text", texts, "-o", out,
                   "--batch-size", "2", "--summary", summary))
    assert json.loads(summary.read_text())["processed"] == 2
    for a, fused in ((a1, out / "00028N.png"), (a2, out / "FLIR_08858.png")):
        assert mode_and_size(fused) == ("RGB", Image.open(a).size)  # visible image is colour
    grey_out = tmp_path / "grey"
    ok(run_fusekit("fuse", tmp_path / "a", tmp_path / "b", "--task", "ivf", *FILM, "--text", texts, "-o", grey_out, "--grey"))
    assert mode_and_size(grey_out / "00028N.png") == ("L", (72, 56))
    # Colour output = the grey fused luma with the visible image's chroma: its luma is the grey output's.
    colour_luma = to_grey(np.asarray(Image.open(out / "00028N.png")))
    difference = np.abs(colour_luma - np.asarray(Image.open(grey_out / "00028N.png"), dtype=np.float32))
    assert difference.mean() < 0.5 and np.percentile(difference, 99) <= 2
    # --postprocess film: the released script's bytes (min-max, x255, truncate) of the raw network output.
    film_out = tmp_path / "film"
    ok(run_fusekit("fuse", tmp_path / "a", tmp_path / "b", "--task", "ivf", *FILM, "--text", texts, "-o", film_out,
                   "--grey", "--postprocess", "film"))
    from safetensors.torch import load_file

    raw = direct_film(a1, b1, load_file(str(texts / "00028N.safetensors"))["text"])
    expected = ((raw - raw.min()) / (raw.max() - raw.min()) * np.float32(255)).astype(np.uint8)
    produced = np.asarray(Image.open(film_out / "00028N.png"))
    assert np.array_equal(film_postprocess(raw), expected)
    assert np.mean(produced != expected) < 0.002 and np.abs(produced.astype(int) - expected).max() <= 1
    default = np.asarray(Image.open(grey_out / "00028N.png"))
    assert np.abs(default.astype(int) - np.round(np.clip(raw, 0, 1) * 255)).max() <= 1


def test_mif_manifest_functional_colour_and_grey_ct(tmp_path):
    pet = crop_pair("MIF", "Harvard", "PET_25073", tmp_path, size=(64, 64), left_top=(96, 96))
    ct = crop_pair("MIF", "Harvard", "CT_2013", tmp_path, size=(64, 64), left_top=(96, 96))
    lines = []
    for name, (a, b) in (("pet", pet), ("ct", ct)):
        text = text_features(tmp_path / f"{name}.safetensors", a, b)
        lines.append(json.dumps({"a": str(a), "b": str(b), "name": name, "text": text.name}))
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    ok(run_fusekit("fuse", "--manifest", manifest, "--task", "mif", *FILM, "-o", tmp_path / "out"))
    assert mode_and_size(tmp_path / "out" / "pet.png") == ("RGB", (64, 64))  # PET colour re-attached
    assert mode_and_size(tmp_path / "out" / "ct.png") == ("L", (64, 64))  # MRI + CT: both grey


def test_mef_text_matched_by_image_hashes_and_odd_size(tmp_path):
    a, b = crop_pair("MEF", "MEFB", "Chair", tmp_path, size=(53, 37), left_top=(150, 100))
    texts = tmp_path / "text"
    texts.mkdir()
    text_features(texts / "features-of-some-pair.safetensors", a, b)
    out = tmp_path / "fused.png"
    ok(run_fusekit("fuse", a, b, "--task", "mef", *FILM, "--text", texts, "-o", out))
    assert mode_and_size(out) == ("RGB", (53, 37))


def test_mff_vlf_npy_and_stdout(tmp_path):
    a, b = crop_pair("MFF", "MFIFB", "aymaz_05", tmp_path, size=(48, 40))
    np.save(tmp_path / "aymaz_05.npy", np.random.default_rng(3).standard_normal((1, 12, 768)).astype(np.float32))
    result = ok(run_fusekit("fuse", a, b, "--task", "mff", *FILM, "--text", tmp_path / "aymaz_05.npy", "-o", "-"))
    with Image.open(io.BytesIO(result.stdout)) as image:
        assert (image.mode, image.size) == ("L", (48, 40))


def test_chroma_rules():
    grey = np.full((4, 4), 100, np.uint8)
    rgb_grey = np.stack([grey] * 3, axis=-1)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 2] = 200
    assert not is_colour(rgb_grey) and is_colour(red)
    assert chroma_for("ivf", red, grey) is None  # only the visible image's colour counts
    assert chroma_for("mif", grey, rgb_grey) is None
    assert chroma_for("ivf", grey, red)[..., 1].mean() > 0.5  # red: Cr above neutral
    blend = chroma_for("mef", red, blue)
    assert blend[..., 0].mean() > 0.5 and blend[..., 1].mean() > 0.5  # both saturated sources contribute
    assert np.allclose(chroma_for("mff", red, grey), chroma_for("mff", red, red))


def test_default_model_serves_every_task():
    from fusekit.models import FUSION_MODELS

    for task in ("ivf", "mif", "mef", "mff"):
        spec = FUSION_MODELS.get(default_model(task))
        assert task in spec.tasks
        assert spec.kind == "training-free" or spec.bundled_weights(task) is not None


@pytest.mark.slow
def test_bf16_close_to_fp32(tmp_path):
    from fusekit.io.pairs import Item
    from fusekit.app.fuse import Fuser

    a, b = crop_pair("IVF", "TNO", "10", tmp_path, size=(40, 32))
    text = text_features(tmp_path / "t.safetensors", a, b)
    outputs = []
    for precision in ("fp32", "bf16"):
        fuser = Fuser("film", "ivf", str(WEIGHTS), text=str(text), device="cpu", precision=precision)
        outputs.append(fuser.fuse([fuser.load(Item("10", {"a": str(a), "b": str(b)}))])[0].astype(int))
    assert outputs[0].shape == (32, 40)  # TNO stores grey as RGB: grey output
    assert np.abs(outputs[0] - outputs[1]).mean() < 3


# --------------------------------------------------------------------------------------------- bad inputs


def test_bad_items_are_reported_and_the_batch_goes_on(tmp_path):
    """One run, one bad item per problem: each is named on stderr, the good one is written, exit 1."""
    a, b = crop_pair("IVF", "MSRS", "00040N", tmp_path)
    small_a, small_b = crop_pair("IVF", "MSRS", "00047N", tmp_path, size=(40, 40))
    entries = {
        "good": (a, b, text_features(tmp_path / "good.safetensors", a, b)),
        "sizes": (a, small_b, text_features(tmp_path / "sizes.safetensors", a, small_b)),
        "swapped": (a, b, text_features(tmp_path / "swapped.safetensors", b, a)),
        "encoder": (a, b, text_features(tmp_path / "encoder.safetensors", a, b, encoder="offline")),
        "dim": (a, b, tmp_path / "dim.npy"),
        "absent": (a, b, tmp_path / "absent.safetensors"),
    }
    np.save(tmp_path / "dim.npy", np.zeros((1, 6, 512), np.float32))
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("".join(json.dumps({"a": str(x), "b": str(y), "name": n, "text": str(t)}) + "\n" for n, (x, y, t) in entries.items()))
    summary = tmp_path / "summary.json"
    result = run_fusekit("fuse", "--manifest", manifest, "--task", "ivf", *FILM, "-o", tmp_path / "out", "--summary", summary)
    stderr = assert_user_error(result, "fuse", 1, "swapped")
    assert "72x56 but B is 40x40" in stderr
    assert "'offline' features" in stderr and "encode-text --encoder blip2" in stderr
    assert "512-d" in stderr and "needs 768-d" in stderr
    assert "absent.safetensors" in stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]
    report = json.loads(summary.read_text())
    assert report["processed"] == 1 and report["failed"] == 5
    again = run_fusekit("fuse", "--manifest", manifest, "--task", "ivf", *FILM, "-o", tmp_path / "out", "--skip-existing")
    assert again.returncode == 1 and "1 skipped" in again.stderr.decode()


def test_usage_errors(tmp_path):
    a, b = crop_pair("IVF", "MSRS", "00051N", tmp_path, size=(32, 32))
    assert_user_error(run_fusekit("fuse", a, b, "--task", "ivf", *FILM, "-o", tmp_path / "f.png"), "fuse", 2, "needs text")
    assert_user_error(run_fusekit("fuse", a, b, "--task", "ivf", "--model", "gff", "--weights", WEIGHTS, "-o", tmp_path / "f.png"),
                      "fuse", 2, "takes no --weights")
    text = text_features(tmp_path / "t.safetensors", a, b)
    assert_user_error(run_fusekit("fuse", a, b, "--task", "ivf", *FILM, "--text", text, "-o", b), "fuse", 1, "also an input")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(WEIGHTS.read_bytes()[:5000])
    assert_user_error(run_fusekit("fuse", a, b, "--task", "ivf", "--model", "film", "--weights", cut, "--text", text, "-o", tmp_path / "f.png"),
                      "fuse", 1, "truncated")
    assert_user_error(run_fusekit("fuse", a, b, "--task", "ivf", "--model", "flim", "-o", tmp_path / "f.png"), "fuse", 2, "film")
    assert not (tmp_path / "f.png").exists()


def test_default_model_runs_without_guidance(tmp_path):
    a, b = crop_pair("MEF", "MEFB", "Lamp", tmp_path, size=(64, 48))
    ok(run_fusekit("fuse", a, b, "--task", "mef", "-o", tmp_path / "f.png"))
    assert mode_and_size(tmp_path / "f.png") == ("RGB", (64, 48))


@pytest.mark.slow
def test_batched_pairs_equal_one_by_one(tmp_path):
    from fusekit.io.pairs import Item
    from fusekit.app.fuse import Fuser

    pairs = [crop_pair("IVF", "MSRS", name, tmp_path, size=(40, 24)) for name in ("00103D", "00107D")]
    texts = [text_features(tmp_path / f"t{i}.safetensors", a, b, seed=i) for i, (a, b) in enumerate(pairs)]
    fuser = Fuser("film", "ivf", str(WEIGHTS), text=str(tmp_path), device="cpu")
    loaded = [fuser.load(Item(f"t{i}", {"a": str(a), "b": str(b)})) for i, (a, b) in enumerate(pairs)]
    assert loaded[0].batch_key == loaded[1].batch_key
    together = fuser._run_learned(loaded)
    alone = [fuser._run_learned([pair])[0] for pair in loaded]
    for x, y in zip(together, alone):
        assert x.shape == (24, 40) and np.abs(x - y).max() < 1e-6
