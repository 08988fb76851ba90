"""Process tuning for streaming image data.

Once nimbus pins glibc's mmap threshold (nimbus.common.memory), the heap's trim threshold stays
at its 128 KiB default: every time a ~1 MiB chunk of an upload or download is freed at the top
of the heap, glibc hands the pages back, and the next chunk faults them in and zeroes them
again (260,000 page faults per GiB served, half the cost of a download). 16 MiB of slack keeps
the chunks' pages; large blocks still go to mmap and back to the OS on free.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
TRIM_THRESHOLD = 16 << 20


def keep_streaming_buffers(threshold: int = TRIM_THRESHOLD) -> bool:
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        return bool(ctypes.CDLL(name).mallopt(M_TRIM_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc
        return False
