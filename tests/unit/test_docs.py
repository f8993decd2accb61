"""Every fenced code sample of the documentation (tools/docs_check.py FILES: README.md, CHANGELOG.md,
docs/*.md, bench/README.md, sitecustomize_example/README.md) is run or validated; the tags are in
docs/development.md. One test per sample, found when the tests are collected: a sample someone
adds is checked without touching this file."""

import os

import pytest

from tools import docs_check
from tools.docs_check import Sample

SAMPLES = docs_check.all_samples()


def is_vendor(sample):
    return sample.info.split()[:2] == ["sh", "vendor"]


def is_text(sample):
    return sample.info.strip().startswith("text:")


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if not is_vendor(s) and not is_text(s)], ids=lambda s: s.where
)
def test_sample_runs_or_validates(sample):
    assert docs_check.check(sample) == []


VENDOR_FILES = sorted({s.path for s in SAMPLES if is_vendor(s)})


@pytest.mark.parametrize("path", VENDOR_FILES)
def test_vendor_samples_run_in_order(path):
    """A file's `sh vendor` samples, in order, in one dir; docs/vendoring.md's first one must patch
    the pristine 0.13.1 and its last one restore it."""
    vendor = docs_check.VendorDir()
    try:
        for sample in [s for s in docs_check.samples(path) if is_vendor(s)]:
            assert vendor.run(sample) == [], sample.where
        pristine, states = vendor.pristine, vendor.states
    finally:
        vendor.close()
    if path == "docs/vendoring.md":
        assert len(states) >= 2
        assert states[0] != pristine
        assert states[-1] == pristine


def test_vendoring_doc_has_vendor_samples():
    assert "docs/vendoring.md" in VENDOR_FILES


def test_text_samples_say_why_they_cannot_be_checked():
    for sample in SAMPLES:
        if is_text(sample):
            language, _, _, why = sample.tag()
            assert language == "text" and len(why.split()) >= 3, sample.where


def test_the_samples_of_every_doc_file_are_found():
    files = docs_check.doc_files()
    assert "README.md" in files and "docs/development.md" in files
    assert len(SAMPLES) >= 10
    assert {s.path for s in SAMPLES} >= {"README.md", "docs/development.md", "docs/vendoring.md"}


@pytest.mark.parametrize(
    "info", ["", "bash", "sh", "sh runn", "shell run", "text", "text:", "sh run x y", "sh run cwd=/"]
)
def test_an_unknown_or_missing_tag_fails(info):
    problems = docs_check.check(Sample("x.md", 1, info, "true\n"))
    assert problems and (
        "tag" in problems[0] or "mode" in problems[0] or "attribute" in problems[0] or "reason" in problems[0]
    )


def test_a_failing_sample_fails():
    assert docs_check.check(Sample("x.md", 1, "sh run", "false\n"))
    assert docs_check.check(Sample("x.md", 1, "python", "def (\n"))
    assert docs_check.check(Sample("x.md", 1, "sh static", "make no-such-rule\n"))
    assert docs_check.check(Sample("x.md", 1, "sh static", "python tools/no_such_tool.py\n"))
    assert docs_check.check(Sample("x.md", 1, "sh static", "if then fi\n"))
    assert docs_check.check(Sample("x.md", 1, "console", "$ echo one\ntwo\n"))
    assert docs_check.check(Sample("x.md", 1, "logrotate", "/x/*.log {\n    rotat 3\n}\n"))
    assert docs_check.check(Sample("x.md", 1, "systemd", "[Service]\nExecStart=gunicorn app\n"))
    assert docs_check.check(Sample("x.md", 1, "systemd", "[Service]\nExecStrat=/bin/true\n"))


def test_a_sound_sample_passes():
    assert docs_check.check(Sample("x.md", 1, "console", "$ printf 'a\\nb\\nc\\n'\na\n...\nc\n")) == []
    assert docs_check.check(Sample("x.md", 1, "console", "$ echo version 1.2.3\nversion ...\n")) == []
    assert (
        docs_check.check(Sample("x.md", 1, "sh static", "make test-fast\npython -m tools.matrix --help\n"))
        == []
    )
    unit = "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true \\\n  --flag\n"
    unit += "[Install]\nWantedBy=multi-user.target\n"
    assert docs_check.check(Sample("x.md", 1, "systemd", unit)) == []


def test_fences_in_list_items_and_longer_fences(tmp_path, monkeypatch):
    doc = tmp_path / "x.md"
    doc.write_text("- item\n\n  ```sh run\n  true\n  ```\n\n````text: a fence shown as text\n```\n````\n")
    monkeypatch.setattr(docs_check, "REPO", str(tmp_path))
    found = docs_check.samples("x.md")
    assert [(s.line, s.info, s.text) for s in found] == [
        (3, "sh run", "true\n"),
        (7, "text: a fence shown as text", "```\n"),
    ]


def test_an_unclosed_fence_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "x.md").write_text("```sh run\ntrue\n")
    monkeypatch.setattr(docs_check, "REPO", str(tmp_path))
    with pytest.raises(ValueError, match="never closed"):
        docs_check.samples("x.md")


def test_logrotate_owners_this_machine_lacks_become_root():
    text = docs_check.logrotate_config(
        "/x {\n    create 0640 nosuchuser nosuchgroup\n    su root nosuch\n}\n"
    )
    assert "    create 0640 root root\n" in text and "    su root root\n" in text


def test_make_docs_check_is_a_rule():
    assert {"docs-check", "test-fast", "test", "demo", "matrix"} <= docs_check.make_targets()
    assert os.path.exists(os.path.join(docs_check.REPO, "tools", "docs_check.py"))


def test_a_tag_of_its_own_passes_only_when_a_test_reads_the_sample(tmp_path, monkeypatch):
    (tmp_path / "tests").mkdir()
    monkeypatch.setattr(docs_check, "REPO", str(tmp_path))
    sample = Sample("docs/page.md", 1, "cron", "*/5 * * * * root true\n")
    assert docs_check.check(sample)  # nobody reads it: unknown tag
    (tmp_path / "tests" / "test_page.py").write_text('PAGE = "docs/page.md"\nline = block("cron")\n')
    assert docs_check.read_by(sample) == ["tests/test_page.py"]
    assert docs_check.check(sample) == []
    other = Sample("docs/other.md", 1, "cron", "x\n")  # the test names another file
    assert docs_check.check(other)
