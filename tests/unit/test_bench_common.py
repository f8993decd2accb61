"""bench/common.py's helpers: the tables, the percentile, the setups, the header."""

import os

import pytest

from bench import common


def test_table_is_markdown_with_padded_columns():
    out = common.table(["name", "n"], [["ours", 1], ["unpatched-0.13.1", 22]]).splitlines()
    assert out[0] == "| name             | n  |"
    assert out[1] == "|------------------|----|"
    assert out[3] == "| unpatched-0.13.1 | 22 |"
    assert len({len(line) for line in out}) == 1


@pytest.mark.parametrize(
    "values, q, expected",
    [
        ([5, 1, 3, 2, 4], 50, 3),
        ([5, 1, 3, 2, 4], 100, 5),
        ([5, 1, 3, 2, 4], 1, 1),
        ([1, 2, 3, 4], 75, 3),
        ([1, None, 2], 100, None),  # never happened sorts last
        ([1, None, 2], 50, 2),
        ([], 50, None),
    ],
)
def test_percentile_nearest_rank(values, q, expected):
    assert common.percentile(values, q) == expected


def test_setup_names_are_unique_and_selectable():
    names = [s.name for s in common.SETUPS]
    assert len(names) == len(set(names))
    assert [s.name for s in common.setups_by_name(["ours-0.54.0", "sync-0.54.0"])] == [
        "ours-0.54.0",
        "sync-0.54.0",
    ]
    assert common.setups_by_name([]) == common.SETUPS
    with pytest.raises(SystemExit) as err:
        common.setups_by_name(["nope"])
    assert "unknown setup(s) nope" in str(err.value)


def test_controls_turn_the_patch_off():
    by = {s.name: s for s in common.SETUPS}
    assert by["unpatched-0.13.1"].env == common.OFF == {"UVICORN_USR1_PATCH": "0"}
    assert by["ours-0.13.1"].env == {} and by["ours-0.13.1"].with_patch
    assert by["handedit-0.13.1"].hand_edit and not by["handedit-0.13.1"].with_patch
    assert not by["gunicorn-asgi"].with_patch


def test_hand_edit_is_the_reports_one_line_fix():
    assert common.HAND_EDIT_OLD in "class UvicornWorker:\n" + common.HAND_EDIT_OLD
    assert "signal.signal(signal.SIGUSR1, self.handle_usr1)" in common.HAND_EDIT_NEW


def test_commit_is_a_sha_maybe_dirty():
    found = common.commit()
    if not os.path.isdir(os.path.join(common.REPO, ".git")) and not os.path.isfile(
        os.path.join(common.REPO, ".git")
    ):
        assert found == "unknown (not a git checkout)"  # an unpacked sdist or a copy
        return
    head = found.split("+")[0]
    assert len(head) == 40 and int(head, 16) >= 0
    assert found in (head, head + "+dirty")


def test_machine_header_names_command_and_commit():
    lines = common.machine_header("title here").splitlines()
    assert lines[0] == "# title here"
    keys = [line.split(":")[0].split(" ")[1] for line in lines[1:]]
    assert keys == ["date", "machine", "load", "driver", "command", "commit"]
    assert lines[-1] == "# commit: " + common.commit()
