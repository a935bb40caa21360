"""A run freezes the objects that existed before it (Python's cycle collector skips them: a
third of the run's time on a 94k-parameter MLP) and unfreezes them after; a caller's own
freeze is left as it was."""

from __future__ import annotations

import gc

import numpy as np

import gradcmp
from gradcmp.judging import runner

DATA = (np.arange(8.0).reshape(8, 1), 3 * np.arange(8.0) + 1)


def test_old_objects_are_frozen_during_the_run_and_thawed_after():
    assert gc.get_freeze_count() == 0
    seen = []
    original = runner._run

    def spying(*args):
        seen.append(gc.get_freeze_count())
        return original(*args)

    runner._run = spying
    try:
        report = gradcmp.compare(DATA, backends="native")
    finally:
        runner._run = original
    assert report.verdict == "agree"
    assert seen and seen[0] > 1000  # everything imported so far was frozen
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_a_callers_freeze_is_theirs():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with runner.old_objects_frozen():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
