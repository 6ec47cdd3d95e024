"""Keep freed memory in the process for reuse (glibc's allocator), set per command, never on import.

By default glibc returns a freed block over 128 KiB to the kernel at once (mmap and trim thresholds, which it
then raises dynamically up to 32 MiB), so the next image-sized temporary is fresh pages the kernel must zero:
close to half the CPU time of the metrics on a 640x480 triple, and ~1 s of the ~7 s CPU time of `fusekit fuse
--model film`. Raising the thresholds makes freed blocks come back from the heap instead. It is a process-wide
setting, so the library never sets it on import: the CLI sets it for every command (`fusekit.cli.main`) and the
`metrics` command and the speed benchmarks raise it further for their own process.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MiB = 2**20


def keep_freed_memory(largest_block: int = 128 * MiB, kept: int = 128 * MiB) -> bool:
    """Freed blocks up to `largest_block` bytes stay in the heap for reuse, and up to `kept` bytes of free heap
    are not trimmed; False where the C library is not glibc (nothing changes there)."""
    try:  # the symbols already loaded into the process (no library search: this runs at every start)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mmap_set = mallopt(_M_MMAP_THRESHOLD, largest_block) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, kept) == 1 and mmap_set)
