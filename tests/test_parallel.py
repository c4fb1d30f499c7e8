"""Forked workers (``sentiment.parallel``): results in task order, and the parent's heap left alone."""

from __future__ import annotations

import functools
import gc

import pytest

from sentiment.parallel import can_fork, fork_map, split_ranges

pytestmark = pytest.mark.skipif(not can_fork(), reason="needs fork (Linux)")


def test_results_come_back_in_task_order() -> None:
    tasks = [functools.partial(pow, i, 2) for i in range(9)]
    assert fork_map(tasks, workers=2) == [i * i for i in range(9)]
    assert split_ranges(10, 4) == [(0, 2), (2, 5), (5, 8), (8, 10)]


def test_workers_freeze_what_they_inherit() -> None:
    """A worker's collections skip the objects it inherited (they are the parent's, never its garbage);
    the parent's own collector is left as it was."""
    before = gc.get_freeze_count()
    inherited = [[str(i)] for i in range(1000)]  # tracked objects the workers inherit
    frozen = fork_map([gc.get_freeze_count] * 2, workers=2)
    assert all(count >= len(inherited) for count in frozen)
    assert gc.get_freeze_count() == before
