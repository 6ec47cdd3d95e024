"""Running a command over many items: keep going past bad ones, skip finished ones, overlap I/O, report at the end.

A bad item (a `FusekitError` while loading, processing or writing it, or a matching problem) is reported on stderr
as it happens and counted; the rest still run; the command exits 1 at the end. ``--skip-existing`` skips items
whose outputs all exist already (atomic writes mean an existing output is always complete, so a killed run
resumed this way ends with exactly the bytes of an uninterrupted one). ``--summary FILE`` writes the counts, the
reason per failed item, the wall time and the rate as JSON.

Throughput: a command may split its work into ``load(item)`` (decode images, read features), ``process`` (the
model, on the calling thread, so models are loaded once and the device is used by one thread) and
``write(item, result)`` (encode and store the outputs). Loading and writing then run in background threads while
the model works on the next item; the queues between the stages are bounded, so memory stays flat on a large
dataset. With ``batch_size > 1`` consecutive loaded items with the same ``batch_key`` (e.g. image size) are handed
to ``process`` together, so same-size pairs are batched on the device; a group that fails is retried item by item
so that one bad pair is reported alone.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import log
from ..errors import EXIT_FAILURE, EXIT_OK, FusekitError
from .formats import write_json
from .pairs import Item


@dataclass
class BatchResult:
    """What happened to each item of a run; `failed` holds (name, reason) in item order."""

    processed: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_FAILURE if self.failed else EXIT_OK

    def as_dict(self) -> dict:
        rate = self.processed / self.seconds if self.seconds > 0 else 0.0
        return {
            "command": f"fusekit {log.settings.command}".strip(),
            "total": self.processed + self.skipped + len(self.failed),
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": len(self.failed),
            "failures": [{"name": name, "reason": reason} for name, reason in self.failed],
            "seconds": round(self.seconds, 3),
            "items_per_second": round(rate, 3),
        }

    def report(self, summary_path: str | None = None, always: bool = False) -> None:
        """One summary line on stderr (for batches, or when `always`), and the JSON summary file if asked."""
        total = self.processed + self.skipped + len(self.failed)
        if total > 1 or always or self.skipped:
            stats = self.as_dict()
            line = (
                f"{self.processed} processed, {self.skipped} skipped, {len(self.failed)} failed "
                f"in {stats['seconds']:.1f} s ({stats['items_per_second']:.2f} pairs/s)"
            )
            if self.failed:
                names = ", ".join(name for name, _ in self.failed[:5])
                line += f"; failed: {names}" + (f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else "")
            log.info(line)
        if summary_path:
            write_json(summary_path, self.as_dict())


def outputs_exist(paths: Iterable[str | Path]) -> bool:
    """Whether every output is already there (stdout never counts as existing)."""
    paths = list(paths)
    return bool(paths) and all(str(path) != "-" and Path(path).exists() for path in paths)


def run_batch(
    items: Iterable[Item],
    process: Callable[[Item, Any], Any],
    *,
    outputs: Callable[[Item], list[str | Path]] | None = None,
    skip_existing: bool = False,
    problems: Iterable[tuple[str, str]] = (),
    total: int | None = None,
    load: Callable[[Item], Any] | None = None,
    write: Callable[[Item, Any], None] | None = None,
    process_batch: Callable[[list[Item], list[Any]], list[Any]] | None = None,
    batch_size: int = 1,
    batch_key: Callable[[Any], Hashable] | None = None,
    workers: int = 2,
    queue_size: int = 8,
) -> BatchResult:
    """Run every item through load → process → write, collecting failures instead of stopping at the first one.

    One calling convention: `process(item, data)` on this thread, `data` being what `load(item)` returned (None
    without `load`); with ``batch_size > 1``, groups of loaded items go to `process_batch(items, datas)`, which
    returns one result per item (a group of one, or a group retried item by item, goes to `process`). A result
    goes to `write` (in a background thread) when given. `load` runs up to `queue_size` items ahead in `workers`
    threads; at most `queue_size` writes are pending at any time.
    """
    if batch_size > 1 and process_batch is None:
        raise ValueError("batch_size > 1 needs process_batch")
    result = BatchResult()
    started = time.perf_counter()
    for name, reason in problems:
        _fail(result, name, reason)
    todo: list[Item] = []
    for item in items:
        if skip_existing and outputs is not None and outputs_exist(outputs(item)):
            result.skipped += 1
            log.verbose(f"{item.name}: output exists, skipped")
        else:
            todo.append(item)
    if load is None and write is None and batch_size <= 1:
        _run_plain(todo, process, result)
    else:
        _Pipeline(process, process_batch, load, write, batch_size, batch_key, workers, queue_size, result).run(todo)
    positions = {item.name: index for index, item in enumerate(todo)}
    result.failed.sort(key=lambda entry: positions.get(entry[0], -1))  # stable: matching problems stay first
    result.seconds = time.perf_counter() - started
    return result


def _run_plain(todo: list[Item], process: Callable[[Item, Any], Any], result: BatchResult) -> None:
    for item in log.progress(todo, total=len(todo)):
        try:
            process(item, None)
        except Exception as exc:  # noqa: BLE001 - one item must not sink the batch
            _fail(result, item.name, _reason(exc))
        else:
            result.processed += 1


class _Pipeline:
    """Background loading and writing around a model that runs on the calling thread."""

    def __init__(self, process, process_batch, load, write, batch_size, batch_key, workers, queue_size, result: BatchResult):
        self.process, self.process_batch, self.load, self.write = process, process_batch, load, write
        self.batch_size, self.batch_key = max(1, batch_size), batch_key
        self.workers, self.queue_size = max(1, workers), max(1, queue_size)
        self.result = result
        self.writes: deque[tuple[Item, Future]] = deque()
        self.writer: ThreadPoolExecutor | None = None

    def run(self, todo: list[Item]) -> None:
        loader = ThreadPoolExecutor(self.workers, thread_name_prefix="fusekit-load") if self.load else None
        self.writer = ThreadPoolExecutor(self.workers, thread_name_prefix="fusekit-write") if self.write else None
        try:
            group: list[tuple[Item, Any]] = []
            for item, data in log.progress(self._loaded(todo, loader), total=len(todo)):
                if group and self._key(group[0][1]) != self._key(data):
                    self._run_group(group)
                    group = []
                group.append((item, data))
                if len(group) >= self.batch_size:
                    self._run_group(group)
                    group = []
            if group:
                self._run_group(group)
            while self.writes:
                self._finish_write()
        finally:
            for pool in (loader, self.writer):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)

    def _loaded(self, todo: list[Item], loader: ThreadPoolExecutor | None):
        """Yield (item, data) in item order, loading up to `queue_size` items ahead; failed loads are reported."""
        if loader is None:
            yield from ((item, None) for item in todo)
            return
        pending: deque[tuple[Item, Future]] = deque()
        upcoming = iter(todo)
        for item in upcoming:
            pending.append((item, loader.submit(self.load, item)))
            if len(pending) >= self.queue_size:
                break
        while pending:
            item, future = pending.popleft()
            following = next(upcoming, None)
            if following is not None:
                pending.append((following, loader.submit(self.load, following)))
            try:
                data = future.result()
            except Exception as exc:  # noqa: BLE001
                _fail(self.result, item.name, _reason(exc))
                continue
            yield item, data

    def _key(self, data: Any) -> Hashable:
        return self.batch_key(data) if self.batch_key is not None else None

    def _run_group(self, group: list[tuple[Item, Any]]) -> None:
        if self.batch_size > 1 and len(group) > 1:
            try:
                outputs = self.process_batch([item for item, _ in group], [data for _, data in group])
                if len(outputs) != len(group):
                    raise RuntimeError(f"batch of {len(group)} gave {len(outputs)} results")
            except Exception:  # noqa: BLE001 - retried one by one so the bad item is named alone
                if log.settings.debug:
                    traceback.print_exc()
                for item, data in group:
                    self._run_group([(item, data)])
                return
            for (item, _), output in zip(group, outputs):
                self._hand_over(item, output)
            return
        item, data = group[0]
        try:
            output = self.process(item, data)
        except Exception as exc:  # noqa: BLE001
            _fail(self.result, item.name, _reason(exc))
            return
        self._hand_over(item, output)

    def _hand_over(self, item: Item, output: Any) -> None:
        if self.writer is None:
            self.result.processed += 1
            return
        self.writes.append((item, self.writer.submit(self.write, item, output)))
        while len(self.writes) > self.queue_size or (self.writes and self.writes[0][1].done()):
            self._finish_write()

    def _finish_write(self) -> None:
        item, future = self.writes.popleft()
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001
            _fail(self.result, item.name, _reason(exc))
        else:
            self.result.processed += 1


def _reason(exc: Exception) -> str:
    if log.settings.debug:
        traceback.print_exception(exc)
    if isinstance(exc, FusekitError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)"


def _fail(result: BatchResult, name: str, reason: str) -> None:
    result.failed.append((name, reason))
    log.error(f"{name}: {reason}")
