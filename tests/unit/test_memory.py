"""Process tuning applied once a server process has started its cloud."""

from __future__ import annotations

import gc

from nimbus.common.memory import GC_YOUNG_THRESHOLD, settle_after_start


def test_settle_after_start_freezes_what_lives_and_collects_less_often() -> None:
    threshold = gc.get_threshold()
    try:
        settle_after_start()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *threshold[1:])
        # Objects made afterwards are still tracked and collected.
        cycle: list[object] = []
        cycle.append(cycle)
        assert gc.is_tracked(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
