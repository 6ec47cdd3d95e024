"""The batch engine: failures collected per item, skipping, background load/write, device batching, summaries.

Synthetic `process` functions over real DEV-set images (Harvard MIF, 256x256; MEFB for mixed sizes), so the
engine is checked on the real image I/O without depending on any model.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from conftest import DATA
from fusekit import log
from fusekit.errors import FusekitError
from fusekit.io.batch import BatchResult, run_batch
from fusekit.io.images import read_image, to_grey, write_image
from fusekit.io.pairs import Item, select, shard_problems

HARVARD = DATA / "MIF" / "Harvard"
MEFB = DATA / "MEF" / "MEFB"


@pytest.fixture(autouse=True)
def quiet_log():
    log.configure("batch-test", 0, False, False)
    yield
    log.configure("", 0, None, False)


def harvard_items():
    return select([str(HARVARD / "mri"), str(HARVARD / "other")]).items


def average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((to_grey(a) + to_grey(b)) / 2).round().astype(np.uint8)


def test_plain_process_keeps_going_past_a_bad_item(capsys):
    items = harvard_items()
    seen = []

    def process(item, data):
        assert data is None  # no load: one calling convention, nothing loaded
        if item.name == items[3].name:
            raise FusekitError("cannot read it", "check the file")
        if item.name == items[6].name:
            raise ValueError("a bug")
        seen.append(item.name)

    result = run_batch(items, process, problems=[("ghost", "no image named 'ghost'")])
    assert isinstance(result, BatchResult)
    assert seen == [item.name for i, item in enumerate(items) if i not in (3, 6)]
    assert result.processed == 8 and result.exit_code == 1
    assert [name for name, _ in result.failed] == ["ghost", items[3].name, items[6].name]
    assert "internal error: ValueError: a bug" in result.failed[2][1]
    err = capsys.readouterr().err
    assert f"fusekit batch-test: error: {items[3].name}: cannot read it (check the file)" in err
    assert "Traceback" not in err


def test_background_load_and_write_give_the_bytes_of_a_plain_loop(tmp_path):
    items = harvard_items()
    for item in items:  # the plain, single-threaded reference
        write_image(tmp_path / "plain" / f"{item.name}.png", average(read_image(item.a), read_image(item.b)))
    threads = {"load": set(), "process": set(), "write": set()}

    def load(item):
        threads["load"].add(threading.current_thread().name)
        return read_image(item.a), read_image(item.b)

    def process(item, data):
        threads["process"].add(threading.current_thread().name)
        return average(*data)

    def write(item, fused):
        threads["write"].add(threading.current_thread().name)
        write_image(tmp_path / "piped" / f"{item.name}.png", fused)

    result = run_batch(items, process, load=load, write=write, workers=2, queue_size=3)
    assert result.processed == 10 and not result.failed and result.exit_code == 0
    for item in items:
        assert (tmp_path / "piped" / f"{item.name}.png").read_bytes() == (tmp_path / "plain" / f"{item.name}.png").read_bytes()
    assert threads["process"] == {threading.main_thread().name}
    assert all(name.startswith("fusekit-load") for name in threads["load"])
    assert all(name.startswith("fusekit-write") for name in threads["write"])


def test_queues_are_bounded(tmp_path):
    items = harvard_items()
    loaded, processed, most_ahead = [], [], [0]
    lock = threading.Lock()

    def load(item):
        with lock:
            loaded.append(item.name)
            most_ahead[0] = max(most_ahead[0], len(loaded) - len(processed))
        return item.name

    def process(item, data):
        time.sleep(0.01)  # a slow model: loaders would run far ahead if nothing held them back
        processed.append(data)
        return data

    result = run_batch(items, process, load=load, write=lambda item, out: None, queue_size=2, workers=2)
    assert result.processed == 10
    assert processed == [item.name for item in items]  # the model sees items in order
    assert most_ahead[0] <= 3  # queue_size loaded ahead, plus the one being handed over


def test_failures_in_each_stage_are_reported_in_item_order(tmp_path):
    items = harvard_items()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    items[2].paths["a"] = str(broken)

    def load(item):
        return read_image(item.a), read_image(item.b)

    def process(item, data):
        if item.name == items[5].name:
            raise FusekitError("model refused it")
        return average(*data)

    def write(item, fused):
        if item.name == items[1].name:
            time.sleep(0.05)  # finishes after later items: the report must still be in item order
            raise FusekitError("disk full")
        write_image(tmp_path / "out" / f"{item.name}.png", fused)

    result = run_batch(items, process, load=load, write=write)
    assert result.exit_code == 1 and result.processed == 7
    assert [name for name, _ in result.failed] == [items[1].name, items[2].name, items[5].name]
    assert "broken.png" in result.failed[1][1]
    written = sorted(path.stem for path in (tmp_path / "out").glob("*.png"))
    assert written == sorted(item.name for i, item in enumerate(items) if i not in (1, 2, 5))


def test_same_size_items_are_batched_and_a_failing_batch_is_retried_one_by_one():
    items = select([str(MEFB / "over"), str(MEFB / "under")]).items
    calls = []

    def load(item):
        return read_image(item.a).shape[:2]

    def process_batch(batch, sizes):
        assert len(set(sizes)) == 1 and len(batch) <= 3
        calls.append([item.name for item in batch])
        if any(item.name == "Lamp" for item in batch) and len(batch) == 1:
            raise FusekitError("Lamp is bad")
        if any(item.name == "Lamp" for item in batch):
            raise RuntimeError("batch failed")
        return [item.name.upper() for item in batch]

    def process(item, size):
        return process_batch([item], [size])[0]

    done = []
    result = run_batch(items, process, load=load, write=lambda item, out: done.append(out), process_batch=process_batch,
                       batch_size=3, batch_key=lambda size: size)
    assert [name for name, _ in result.failed] == ["Lamp"] and result.processed == 9
    assert sorted(done) == sorted(item.name.upper() for item in items if item.name != "Lamp")
    # AirBellowsGap and Zentrum share a size but are not neighbours in name order; only neighbours are grouped.
    assert all(len(call) == 1 for call in calls)
    by_name = {item.name: item for item in items}
    twins = [Item(f"{name}-{copy}", by_name[name].paths) for name in ("AirBellowsGap", "Zentrum") for copy in (1, 2)]
    calls.clear()
    result = run_batch(twins, process, load=load, write=lambda *_: None, process_batch=process_batch, batch_size=3,
                       batch_key=lambda size: size)
    assert result.processed == 4 and [len(call) for call in calls] == [3, 1]


def test_skip_existing_and_summary(tmp_path, capsys):
    items = harvard_items()
    out = tmp_path / "out"
    out.mkdir()
    for item in items[:4]:
        (out / f"{item.name}.png").write_bytes(b"done before")
    ran = []

    def outputs(item):
        return [out / f"{item.name}.png"]

    result = run_batch(items, lambda item, _: ran.append(item.name), outputs=outputs, skip_existing=True)
    assert result.skipped == 4 and result.processed == 6 and ran == [item.name for item in items[4:]]
    result.failed.append(("PET_99999", "no such pair (check the manifest)"))
    summary = tmp_path / "summary.json"
    result.report(str(summary))
    document = json.loads(summary.read_text())
    assert document["processed"] == 6 and document["skipped"] == 4 and document["failed"] == 1 and document["total"] == 11
    assert document["failures"] == [{"name": "PET_99999", "reason": "no such pair (check the manifest)"}]
    assert document["seconds"] >= 0 and document["items_per_second"] >= 0
    assert document["command"] == "fusekit batch-test"
    err = capsys.readouterr().err
    assert "6 processed, 4 skipped, 1 failed in" in err and "pairs/s" in err and "failed: PET_99999" in err


def test_an_interrupt_stops_the_batch():
    items = harvard_items()

    def process(item, data):
        if item.name == items[2].name:
            raise KeyboardInterrupt
        return data

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, process, load=lambda item: item.name, write=lambda item, out: None)


def test_matching_problems_go_to_the_first_shard_only():
    problems = [("ghost", "no image named 'ghost'")]
    assert shard_problems(problems, None) == problems
    assert shard_problems(problems, (0, 4)) == problems
    assert shard_problems(problems, (3, 4)) == []
