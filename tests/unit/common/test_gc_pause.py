"""The collector is off while any bulk section runs and back on (not left off) when the last one ends."""

from __future__ import annotations

import gc

import pytest

from services.common.gc_pause import CollectorPause


def test_nested_and_overlapping_sections_switch_the_collector_back_on_at_the_end():
    assert gc.isenabled()
    pause, other = CollectorPause(), CollectorPause()
    with pause:
        assert not gc.isenabled()
        assert pause.run(gc.isenabled) is False
        with other:  # a second pause object in the same process (another service's) overlaps
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer section is still running
    assert gc.isenabled()


def test_a_failing_section_switches_it_back_on():
    pause = CollectorPause()
    with pytest.raises(ZeroDivisionError):
        pause.run(lambda: 1 / 0)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with CollectorPause():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
