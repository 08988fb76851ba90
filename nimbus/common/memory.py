"""Process memory tuning, applied once when a server process starts.

glibc raises its mmap threshold after large blocks are freed, so argon2's 19 MiB work buffers
(one per hashing thread) end up kept in per-thread arenas: about 80 MB that never goes back
after a burst of logins. Pinning the threshold keeps big blocks on mmap, returned on free.

With the threshold pinned, the heap's trim threshold stays at its 128 KiB default: every ~1 MiB
chunk of an image upload or download freed at the top of the heap is handed back and faulted
in again for the next one (260,000 page faults per GiB). 16 MiB of slack keeps those pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def _mallopt(option: int, value: int) -> bool:
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        return bool(ctypes.CDLL(name).mallopt(option, value))
    except (OSError, AttributeError):  # not glibc
        return False


def tune_for_servers() -> bool:
    """Big blocks back to the OS on free; 16 MiB of heap slack for streaming buffers."""
    mmap_pinned = _mallopt(M_MMAP_THRESHOLD, 1 << 20)
    slack_kept = _mallopt(M_TRIM_THRESHOLD, 16 << 20)
    return mmap_pinned and slack_kept
