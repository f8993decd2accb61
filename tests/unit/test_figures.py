"""Every figure docs/performance.md quotes is in the results file it cites, and the `total N s`
figures of the Makefile and bench/README.md are the results files' `# total` lines.

docs/performance.md: in a section (`## ...`) that cites `results/NAME.txt`, every number of a
table row (a line starting with `|`) and of its prose must occur in that file (in one of them,
when a section cites several); a table row in a section that cites none is itself an error. A
number is a run of digits with its dots (`0.13.1`, `1.714`) and thousands commas (`126,884` is
`126884`); it is taken out of whatever it is glued to (`py3.8` -> `3.8`), so a version in a setup
label is checked like a measured figure. Fenced code blocks are not checked (commands, not
figures).
"""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHES = ["storm", "startup", "request_path", "alternatives"]  # the Makefile's BENCHES, in order

NUMBER = re.compile(r"\d+(?:,\d{3})+(?![\d,])(?:\.\d+)*|\d+(?:\.\d+)*")
CITE = re.compile(r"results/([a-z_]+)\.txt")
TOTAL = re.compile(r"^# total (\d+) s$", re.M)

# Labels whose digits are not figures: they are removed from a line before its numbers are taken.
# The doc names them where it describes a setup, but a results file's table does not repeat them
# (request_path.txt has no `UVICORN_USR1_PATCH=0`, whose `1` and `0` would then have to occur there
# by chance; no file has the servers' address). Keep this list short: a figure never belongs here.
LABELS = [
    re.compile(r"UVICORN_USR1_PATCH(?:=0)?"),  # the switch's name and its "off" value
    re.compile(r"127\.0\.0\.1"),  # the address the servers bind to
]


def numbers(text):
    """The numbers of `text`, thousands commas removed, after the LABELS are taken out."""
    for label in LABELS:
        text = label.sub(" ", text)
    return [n.replace(",", "") for n in NUMBER.findall(text)]


def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def results():
    return {name: read("bench", "results", name + ".txt") for name in BENCHES}


def sections(doc):
    """[(heading, [(line number, line)])] of a markdown text, fenced blocks left out."""
    out = [("(top)", [])]
    fenced = False
    for i, line in enumerate(doc.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("## "):
            out.append((line, []))
        else:
            out[-1][1].append((i, line))
    return out


def unmatched(doc, files):
    """The figures of `doc` not found in the results file(s) their section cites, as
    "line N: NUMBER not in NAME.txt: LINE" strings (empty when all are found)."""
    found = {name: set(numbers(text)) for name, text in files.items()}
    problems = []
    for heading, lines in sections(doc):
        cited = sorted(set(CITE.findall(heading + "\n" + "\n".join(line for _, line in lines))))
        missing = [name for name in cited if name not in found]
        if missing:
            problems.append("{}: cites {} that is not a results file".format(heading, missing))
            continue
        for i, line in lines:
            figures = numbers(line)
            if not figures:
                continue
            if not cited:
                if line.startswith("|"):
                    problems.append("line {}: a table row in a section citing no results file".format(i))
                continue
            for n in figures:
                if not any(n in found[name] for name in cited):
                    problems.append(
                        "line {}: {} not in {}: {}".format(i, n, "/".join(c + ".txt" for c in cited), line)
                    )
    return problems


def totals(files):
    out = {}
    for name, text in files.items():
        found = TOTAL.findall(text)
        assert len(found) == 1, "{}.txt: {} `# total N s` lines".format(name, len(found))
        out[name] = int(found[0])
    return out


def test_the_numbers_of_a_line():
    assert numbers("| ours | M | 126,884 | 0 | **1**/201 |") == ["126884", "0", "1", "201"]
    assert numbers("uvicorn 0.13.1 + uvloop (py3.8), 1.714–7.633×, 0.837 %") == [
        "0.13.1",
        "3.8",
        "1.714",
        "7.633",
        "0.837",
    ]
    assert numbers("fastapi 0.83.0, wrapt 1.16.0") == ["0.83.0", "1.16.0"]  # a comma before a space
    assert numbers("`UVICORN_USR1_PATCH=0` on 127.0.0.1") == []  # the LABELS
    assert numbers("`USR1` to the master") == ["1"]  # a signal's digit is checked (storm.txt: SIGUSR1)


def test_every_figure_of_performance_md_is_in_the_results_file_it_cites():
    assert unmatched(read("docs", "performance.md"), results()) == []


def test_performance_md_cites_every_results_file():
    assert set(CITE.findall(read("docs", "performance.md"))) == set(BENCHES)


def doc_totals(doc):
    """{NAME: [N, ...]}: the `total N s` of each section of docs/performance.md, by the one file
    that section cites (a section quoting a total and citing several files is an error)."""
    out = {}
    for heading, lines in sections(doc)[1:]:
        text = "\n".join(line for _, line in lines)
        quoted = [int(n) for n in re.findall(r"`total (\d+) s`", text)]
        if quoted:
            cited = set(CITE.findall(text))
            assert len(cited) == 1, heading
            out.setdefault(cited.pop(), []).extend(quoted)
    return out


def makefile_totals(text):
    """The `bench:` rule's comment, `455+289+259+81 s`, as [455, 289, 259, 81]."""
    found = re.findall(r"^bench:.*the last run: ([\d+]+) s, their `total` lines", text, re.M)
    assert len(found) == 1, found
    return [int(n) for n in found[0].split("+")]


def readme_totals(text):
    """{NAME: [N, ...]}: the `total N s` of each `- `NAME.py`` bullet of bench/README.md."""
    out = {}
    for bullet in re.split(r"\n(?=- )", text):
        script = re.match(r"- `([a-z_]+)\.py`", bullet)
        if script:
            out[script.group(1)] = [int(n) for n in re.findall(r"`total (\d+) s`", bullet)]
    return out


def test_performance_md_totals_are_the_files_totals():
    want = totals(results())
    assert doc_totals(read("docs", "performance.md")) == {name: [want[name]] for name in BENCHES}


def test_makefile_totals_are_the_files_totals():
    want = totals(results())
    assert makefile_totals(read("Makefile")) == [want[name] for name in BENCHES]


def test_bench_readme_totals_are_the_files_totals():
    want = totals(results())
    assert readme_totals(read("bench", "README.md")) == {name: [want[name]] for name in BENCHES}


# The controls: a figure that is in no file is reported; the separators and labels are not.


@pytest.mark.parametrize(
    "line",
    [
        "| **this package**, fake row | M | 987,654 | 0 | 0 / 0 | 0 | 0 | 201/201 |",
        "With the package: 987654 requests and no failure.",
        "| **this package**, uvicorn 9.99.9 | M | 0 | 0 |",
    ],
)
def test_control_a_number_in_no_file_is_reported(line):
    files = results()
    doc = read("docs", "performance.md")
    faked = doc.replace("\n## Start-up cost", "\n" + line + "\n\n## Start-up cost", 1)
    assert faked != doc
    new = [p for p in unmatched(faked, files) if line in p]
    assert len(new) == 1 and "not in storm.txt" in new[0]
    assert len(unmatched(faked, files)) == len(unmatched(doc, files)) + 1


def test_control_separators_match_and_other_files_do_not_count():
    files = {"storm": "| ours | 126884 | 0.13.1 |\n", "startup": "| 3.8 | 1.714 | 42 |\n"}
    ok = "## S\nresults/storm.txt: 126,884 ok on 0.13.1.\n| x | 126884 |\n"
    ok += "## T\nresults/startup.txt py3.8 1.714\n"
    assert unmatched(ok, files) == []
    crossed = "## S\nresults/storm.txt: 42 ok.\n"  # 42 is in startup.txt, not in the file cited
    assert unmatched(crossed, files) == ["line 2: 42 not in storm.txt: results/storm.txt: 42 ok."]
    assert unmatched("## S\n| a table | 3 |\n", files) == [
        "line 2: a table row in a section citing no results file"
    ]
    assert unmatched("## S\nresults/nope.txt 1\n", files) == [
        "## S: cites ['nope'] that is not a results file"
    ]


def test_control_a_wrong_total_is_reported():
    files = results()
    want = totals(files)
    storm = want["storm"]
    for text, parse in [
        (read("docs", "performance.md"), lambda t: doc_totals(t)["storm"]),
        (read("Makefile"), lambda t: makefile_totals(t)[0]),
        (read("bench", "README.md"), lambda t: readme_totals(t)["storm"]),
    ]:
        assert parse(text) in (storm, [storm])
        wrong = text.replace("total {} s".format(storm), "total {} s".format(storm + 1))
        wrong = wrong.replace("run: {}+".format(storm), "run: {}+".format(storm + 1))
        assert parse(wrong) in (storm + 1, [storm + 1])
    files["storm"] += "# total 1 s\n"
    with pytest.raises(AssertionError):
        totals(files)
