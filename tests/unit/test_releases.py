"""uvicorn_usr1_patch/releases.py: the version key, the family boundaries, the USR1 outcome."""

import signal

import pytest

from uvicorn_usr1_patch import releases
from uvicorn_usr1_patch.releases import ASGI, DEFERRED, PASS, RESET, SYNC, UNKNOWN, family_of, version_key


@pytest.mark.parametrize(
    "text, key",
    [
        ("0.13.1", (0, 13, 1)),
        ("0.17.0.post1", (0, 17, 0, 1)),
        ("3.10", (3, 10)),
        ("v1.2rc3", (1, 2, 3)),
        ("", ()),
    ],
)
def test_version_key_takes_every_number(text, key):
    assert version_key(text) == key


def test_version_key_sorts_numerically_not_as_text():
    versions = ["0.10.0", "0.9.1", "0.4.0", "0.18.3", "0.17.0.post1", "0.17.0", "0.2.0"]
    assert sorted(versions, key=version_key) == [
        "0.2.0",
        "0.4.0",
        "0.9.1",
        "0.10.0",
        "0.17.0",
        "0.17.0.post1",
        "0.18.3",
    ]


@pytest.mark.parametrize(
    "version, family",
    [
        ("0.1.0", None),
        ("0.3.32", None),
        ("0.4.0", PASS),
        ("0.11.5", PASS),
        ("0.13.2", PASS),
        ("0.13.3", RESET),
        ("0.14.0", RESET),
        ("0.18.3", RESET),
        ("0.19.0", SYNC),
        ("0.30.0", SYNC),
        ("1.0.0", SYNC),
    ],
)
def test_family_of_each_side_of_each_boundary(version, family):
    assert family_of(version) == family


def test_families_are_contiguous_and_ordered():
    fams = list(releases.FAMILIES.values())
    assert [f.name for f in fams] == [PASS, RESET, SYNC, ASGI]
    # each uvicorn family starts right after the previous one ends (no gap, no overlap)
    assert family_of(fams[0].last) == PASS and family_of(fams[1].first) == RESET
    assert family_of(fams[1].last) == RESET and family_of(fams[2].first) == SYNC
    assert version_key(fams[0].last) < version_key(fams[1].first) < version_key(fams[2].first)


def test_descriptions_name_the_release_range():
    assert "0.4-0.13.2" in releases.DESCRIPTIONS[PASS]
    assert "0.13.3-0.18.3" in releases.DESCRIPTIONS[RESET]
    assert "0.19+" in releases.DESCRIPTIONS[SYNC]
    assert "event loop" in releases.DESCRIPTIONS[DEFERRED]


class Worker(object):
    def handle_usr1(self, sig, frame):
        pass


def master_handler(sig, frame):
    pass


def test_usr1_outcome_for_each_kind_of_handler():
    worker = Worker()

    def inherited(h):
        return h is master_handler

    assert releases.usr1_outcome(signal.SIG_DFL, worker, inherited) == RESET
    assert releases.usr1_outcome(master_handler, worker, inherited) == PASS
    # (the package's own handler, DEFERRED, is recognised by its class: tests/test_worker_signals.py)
    assert releases.usr1_outcome(worker.handle_usr1, worker, inherited) == SYNC
    assert releases.usr1_outcome(Worker().handle_usr1, worker, inherited) == UNKNOWN
    assert releases.usr1_outcome(signal.SIG_IGN, worker, inherited) == UNKNOWN
