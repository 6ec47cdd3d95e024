"""Keep freed memory for reuse while a batch of images is evaluated.

Each metric allocates a few image-sized float64 temporaries and frees them again. glibc hands blocks that large
back to the kernel at once (mmap/trim thresholds of 128 KiB), so every new temporary is page-faulted in afresh:
on a 640x480 triple that is close to half of the CPU time. Raising the thresholds makes freed blocks come back
from the heap instead. This is a process-wide setting, so the library never sets it on import; the `metrics`
command and the speed benchmark call `keep_freed_memory()` for their own process.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP = 512 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Ask glibc to keep up to 512 MiB of freed memory for reuse; False where that is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # M_MMAP_THRESHOLD is capped by glibc at 32 MiB (HEAP_MAX/2 on 64-bit): large enough for image temporaries.
    ok = mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, _HEAP) == 1 and ok)
