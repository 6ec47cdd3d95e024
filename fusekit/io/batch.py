"""Running a command over many items: keep going past bad ones, skip finished ones, report at the end.

A bad item (a `FusekitError` while processing it, or a matching problem) is reported on stderr as it happens and
counted; the rest still run; the command exits 1 at the end. ``--skip-existing`` skips items whose outputs all
exist already (atomic writes mean an existing output is always complete). ``--summary FILE`` writes the counts
as JSON.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import log
from ..errors import EXIT_FAILURE, EXIT_OK, FusekitError
from .formats import write_json
from .pairs import Item


@dataclass
class BatchResult:
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
            log.info(
                f"{self.processed} processed, {self.skipped} skipped, {len(self.failed)} failed "
                f"in {stats['seconds']:.1f} s ({stats['items_per_second']:.2f}/s)"
            )
        if summary_path:
            write_json(summary_path, self.as_dict())


def run_batch(
    items: Iterable[Item],
    process: Callable[[Item], None],
    *,
    outputs: Callable[[Item], list[str | Path]] | None = None,
    skip_existing: bool = False,
    problems: Iterable[tuple[str, str]] = (),
    total: int | None = None,
) -> BatchResult:
    """Call `process` on every item, collecting failures instead of stopping at the first one."""
    result = BatchResult()
    started = time.perf_counter()
    for name, reason in problems:
        _fail(result, name, reason)
    for item in log.progress(items, total=total):
        if skip_existing and outputs is not None:
            paths = outputs(item)
            if paths and all(str(path) != "-" and Path(path).exists() for path in paths):
                result.skipped += 1
                log.verbose(f"{item.name}: output exists, skipped")
                continue
        try:
            process(item)
        except FusekitError as exc:
            _fail(result, item.name, str(exc))
        except Exception as exc:  # a bug, but one item must not sink the batch
            if log.settings.debug:
                traceback.print_exc()
            _fail(result, item.name, f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)")
        else:
            result.processed += 1
    result.seconds = time.perf_counter() - started
    return result


def _fail(result: BatchResult, name: str, reason: str) -> None:
    result.failed.append((name, reason))
    log.error(f"{name}: {reason}")
