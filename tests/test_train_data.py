"""Training data: the shared layouts, the VLF layout as published, guidance files, augmentation, presets, batching."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import DATA, TRAIN

from fusekit.errors import FusekitError
from fusekit.io.images import read_image, to_grey
from fusekit.models import augment
from fusekit.app.train.dataset import Pipeline, collate, load_pairs
from fusekit.app.guidance import GuidanceOptions, PairGuidance, Recipe
from fusekit.app.train.layouts import find_pairs
from fusekit.app.train.presets import PRESETS, schedule_factor


@pytest.mark.parametrize("task", ["ivf", "mif", "mef", "mff"])
def test_shared_train_and_data_layouts_give_every_pair(task):
    for root in (TRAIN, DATA):
        counts = json.loads((root / "MANIFEST.json").read_text())["counts_per_task_dataset"][task.upper()]
        selection = find_pairs(root, task)
        assert not selection.problems
        assert len(selection.items) == sum(counts.values())
        assert {item.name.split("/")[0] for item in selection.items} == set(counts)
    first = find_pairs(TRAIN, task).items[0]
    folder = {"ivf": "ir", "mif": "mri", "mef": "over", "mff": "a"}[task]
    assert f"/{folder}/" in first.a  # the task's A role first


def test_a_task_folder_or_a_dataset_folder_works_too():
    assert len(find_pairs(TRAIN / "IVF", "ivf").items) == 81
    assert len(find_pairs(DATA / "IVF" / "TNO", "ivf").items) == 2


def make_vlf(root, names=("10", "18"), dim=768, tokens=(37, 41)):
    """A VLF-shaped folder from real DEV images: Image/IVF/TNO/{IR,VI}, train.txt, TextFeature/IVF/TNO/*.npy."""
    image_dir = root / "Image" / "IVF" / "TNO"
    for modality, source in (("IR", "ir"), ("VI", "vi")):
        (image_dir / modality).mkdir(parents=True)
        for name in names:
            shutil.copy(DATA / "IVF" / "TNO" / source / f"{name}.png", image_dir / modality / f"{name}.png")
    (image_dir / "train.txt").write_text("".join(f"{name}.png\n" for name in names))
    feature_dir = root / "TextFeature" / "IVF" / "TNO"
    feature_dir.mkdir(parents=True)
    for name, length in zip(names, tokens):
        np.save(feature_dir / f"{name}.npy", np.random.default_rng(int(name)).standard_normal((1, length, dim)).astype(np.float32))
    return root


def test_vlf_reader_on_a_vlf_shaped_folder(tmp_path):
    root = make_vlf(tmp_path / "VLFDataset")
    selection = find_pairs(root, "ivf")
    assert [item.name for item in selection.items] == ["TNO/10", "TNO/18"] and not selection.problems
    assert selection.items[0].a.endswith("IR/10.png") and selection.items[0].fields["text"].endswith("TNO/10.npy")
    provider = PairGuidance(("text",), GuidanceOptions(), Recipe(), task="ivf", model="film")
    pairs = load_pairs(selection.items, False, provider)
    assert pairs[0].guidance["text"].shape == (37, 768) and pairs[1].guidance["text"].shape == (41, 768)
    np.testing.assert_array_equal(pairs[0].a, to_grey(read_image(DATA / "IVF" / "TNO" / "ir" / "10.png")).astype(np.uint8))
    assert provider.info.text_encoder == "blip2" and provider.info.text_dim == 768
    # the variable token counts of a batch are zero-padded
    samples = [[augment.random_crop(p.sample(), 32, np.random.default_rng(0))] for p in pairs]
    batch = collate(samples)
    assert tuple(batch["text"].shape) == (2, 41, 768) and float(batch["text"][0, 37:].abs().sum()) == 0
    assert tuple(batch["a"].shape) == (2, 1, 32, 32)


def test_vlf_pair_without_its_text_feature_is_reported(tmp_path):
    root = make_vlf(tmp_path / "VLFDataset")
    (root / "TextFeature" / "IVF" / "TNO" / "18.npy").unlink()
    selection = find_pairs(root, "ivf")
    assert [item.name for item in selection.items] == ["TNO/10"]
    assert selection.problems[0][0] == "TNO/18" and "18.npy" in selection.problems[0][1]


def test_no_pairs_for_the_task_is_a_clear_error(tmp_path):
    with pytest.raises(FusekitError, match="no MEF pairs"):
        find_pairs(DATA / "IVF", "mef")


def test_film_resize_gives_one_training_shape():
    landscape = {"a": np.random.rand(100, 150).astype(np.float32), "b": np.random.rand(100, 150).astype(np.float32)}
    portrait = {"a": np.random.rand(150, 100).astype(np.float32), "b": np.random.rand(150, 100).astype(np.float32)}
    assert augment.film_resize(landscape)["a"].shape == (288, 384)
    out = augment.film_resize(portrait)
    assert out["a"].shape == out["b"].shape == (288, 384)


def test_geometric_steps_move_images_and_mask_together():
    grey = to_grey(read_image(DATA / "IVF" / "TNO" / "ir" / "10.png")).astype(np.float32) / 255
    sample = {"a": grey, "b": grey.copy(), "mask": (grey > 0.5).astype(np.float32), "text": np.ones((3, 4), np.float32)}
    pipeline = Pipeline(crop=48, extra=("flip", "rot90"))
    for seed in range(4):
        (out,) = pipeline(sample, np.random.default_rng(seed))
        assert out["a"].shape == (48, 48)
        np.testing.assert_array_equal(out["a"], out["b"])
        np.testing.assert_array_equal(out["mask"], (out["a"] > 0.5).astype(np.float32))
        assert out["text"] is sample["text"]
    first = pipeline(sample, np.random.default_rng(7))[0]["a"]
    np.testing.assert_array_equal(first, pipeline(sample, np.random.default_rng(7))[0]["a"])  # deterministic in the rng


def test_small_images_are_padded_up_to_the_crop():
    sample = {"a": np.random.rand(20, 30).astype(np.float32), "b": np.random.rand(20, 30).astype(np.float32)}
    assert augment.random_crop(sample, 32, np.random.default_rng(0))["a"].shape == (32, 32)


def test_presets_follow_the_papers():
    film = PRESETS.get("film")
    assert (film.optimizer, film.lr, film.batch_size, film.epochs, film.resize) == ("adam", 1e-4, 16, 300, "film")
    assert [film.lr * schedule_factor(film.schedule, e, 300) for e in (0, 49, 50, 100, 299)] == [1e-4, 1e-4, 5e-5, 2.5e-5, 1e-4 / 32]
    mg = PRESETS.get("mgfusion")
    lrs = [mg.lr * schedule_factor(mg.schedule, e, mg.epochs) for e in (0, 10, 20, 60, 100)]
    assert lrs == pytest.approx([1e-4, 5.5e-4, 1e-3, 5.5e-4, 1e-4])
    assert PRESETS.get("tesg").optimizer == "adamw" and PRESETS.get("tesg").crop == 96
    assert schedule_factor("cosine", 50, 100) == pytest.approx(0.5)
    with pytest.raises(FusekitError, match="bad schedule"):
        PRESETS.get("default").with_overrides(schedule="step:0")
