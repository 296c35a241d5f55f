"""SeenKeys: which digests came before, within a batch and across batches, in a file of its
own that no name points to and that is released when the check ends, however it ends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.load.seen_keys import SeenKeys


def files_held_under(directory: Path) -> list[str]:
    """Files this process holds open under `directory` (a removed one ends in ' (deleted)')."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the descriptor listdir itself used
        if target.startswith(str(directory)):
            held.append(target)
    return held


def test_a_digest_is_repeated_after_its_first_time_in_the_batch_or_an_earlier_one(
    tmp_path: Path,
) -> None:
    with SeenKeys(tmp_path) as seen:
        assert seen.repeated([5, -7, 5, 2**63 - 1, 5]) == [False, False, True, False, True]
        assert seen.repeated([]) == []
        assert seen.repeated([-7, 8, 8, -(2**63)]) == [True, False, True, False]
        assert seen.repeated(range(10_000, 60_000)) == [False] * 50_000
        assert seen.repeated([59_999, 60_000]) == [True, False]


def test_the_digests_file_has_no_name_and_is_released_at_the_end(tmp_path: Path) -> None:
    with SeenKeys(tmp_path) as seen:
        seen.repeated(range(100_000))
        assert list(tmp_path.iterdir()) == []
        held = files_held_under(tmp_path)
        assert len(held) == 1 and held[0].endswith(".sqlite (deleted)")
    assert files_held_under(tmp_path) == []


def test_the_digests_file_is_released_when_the_check_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), SeenKeys(tmp_path) as seen:
        seen.repeated([1, 2, 3])
        raise RuntimeError("the file could not be read further")
    assert files_held_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_a_check_stopped_midway_releases_the_digests_file(tmp_path: Path) -> None:
    def checked(batches: list[list[int]]):
        with SeenKeys(tmp_path) as seen:
            for batch in batches:
                yield seen.repeated(batch)

    check = checked([[1, 2], [2, 3], [4]])
    assert next(check) == [False, False]
    assert len(files_held_under(tmp_path)) == 1
    check.close()  # as when the reader stops reading the rows
    assert files_held_under(tmp_path) == []
