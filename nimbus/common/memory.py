"""Process memory tuning.

glibc raises its mmap threshold after large blocks are freed, so argon2's 19 MiB work buffers
(one per hashing thread) end up kept in per-thread arenas: about 80 MB that never goes back
after a burst of logins. Pinning the threshold keeps big blocks on mmap, returned on free.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3


def return_large_blocks_to_the_os(threshold: int = 1024 * 1024) -> bool:
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc
        return False
