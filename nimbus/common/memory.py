"""Process memory tuning, applied once when a server process starts.

glibc raises its mmap threshold after large blocks are freed, so argon2's 19 MiB work buffers
(one per hashing thread) end up kept in per-thread arenas: about 80 MB that never goes back
after a burst of logins. Pinning the threshold keeps big blocks on mmap, returned on free.

With the threshold pinned, the heap's trim threshold stays at its 128 KiB default: every ~1 MiB
chunk of an image upload or download freed at the top of the heap is handed back and faulted
in again for the next one (260,000 page faults per GiB). 16 MiB of slack keeps those pages.

The cyclic garbage collector: a started cloud holds some 300,000 objects that live as long as
the process (modules, apps, routes, mappers, settings), and every full collection walked all of
them again: 185 ms each, 1.5 s of a 12.7 s run of 4,000 servers onto 1,000 hypervisors, and a
185 ms stall for whatever request was running. Once the cloud has started, those objects are
frozen (gc.freeze: kept, never scanned), and the youngest generation is collected after 10,000
allocations instead of 700 (requests allocate thousands of short-lived objects, most of them
freed by reference counting before any collection; fewer collections promote fewer of them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
GC_YOUNG_THRESHOLD = 10_000


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


def settle_after_start() -> None:
    """Once the cloud has started: collect its start-up garbage, freeze what is left for the
    rest of the process's life, and collect the youngest generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
