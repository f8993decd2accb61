"""Judging a matrix cell's results: patched runs must pass, controls of affected releases must fail.

Each judge turns a scenario's result dict (tools/matrix/scenarios.py) into (ok, problems), which
tests/test_matrix.py asserts and COMPATIBILITY.md reports.
"""

from uvicorn_usr1_patch.releases import PASS, RESET, SYNC


def _problems_common(result):
    """Checks shared by every signal-based scenario; returns a list of problems."""
    problems = []
    if result["failed_requests"]:
        problems.append("{} failed requests".format(result["failed_requests"]))
    if result["restarts"]:
        problems.append("{} worker restarts".format(result["restarts"]))
    if result["lost"]:
        problems.append("{} access lines lost".format(result["lost"]))
    if result["duplicated"]:
        problems.append("{} access lines duplicated".format(result["duplicated"]))
    if result["logging_errors"]:
        problems.append("{} `Logging error` tracebacks".format(result["logging_errors"]))
    return problems


def judge_rotate(result):
    """(ok, problems) for a patched run of scenario 1 or 2."""
    problems = _problems_common(result)
    if result["pids_changed"]:
        problems.append("worker PIDs changed")
    if not result["reopened"]:
        problems.append("master/workers did not reopen access, error and app logs")
    if result["after_in_new_file"] != result["after_expected"]:
        problems.append(
            "{}/{} post-rotation lines in the new {}".format(
                result["after_in_new_file"], result["after_expected"], result["access_file"]
            )
        )
    if result["before_in_rotated"] != result["before_expected"] or result["rotated_extra"]:
        problems.append(
            "rotated file holds {}/{} earlier lines and {} others".format(
                result["before_in_rotated"], result["before_expected"], len(result["rotated_extra"])
            )
        )
    if not result["rotated_gz"]:
        problems.append("expected one compressed rotated file, got {}".format(result["rotated_files"]))
    if result["app_after_in_new_file"] != result["after_expected"]:
        problems.append(
            "{}/{} post-rotation app.log lines in the new app.log".format(
                result["app_after_in_new_file"], result["after_expected"]
            )
        )
    return not problems, problems


def judge_storm(result):
    problems = _problems_common(result)
    if result["pids_changed"]:
        problems.append("worker PIDs changed")
    if result["last_in_new_file"] != result["last_expected"]:
        problems.append(
            "{}/{} lines after the last rotation in the new {}".format(
                result["last_in_new_file"], result["last_expected"], result["access_file"]
            )
        )
    return not problems, problems


def control_shows_bug(cell, result):
    """(shown, description) of the release's own failure in a control run of scenario 1 or 2."""
    if cell["family"] == PASS:
        shown = result["after_in_new_file"] == 0 and not result["reopened"]
        return shown, "{}/{} post-rotation lines in the new {} (the rest went to the rotated file)".format(
            result["after_in_new_file"], result["after_expected"], result["access_file"]
        )
    if cell["family"] == RESET:
        shown = result["pids_changed"] and result["inflight_failed"] > 0
        return shown, "workers killed: PIDs changed, {} restarts, {}/2 in-flight requests failed".format(
            result["restarts"], result["inflight_failed"]
        )
    ok, problems = judge_rotate(result)
    return False, "works (synchronous reopen)" if ok else "; ".join(problems)


def verdict(cell, results):
    """Patched runs must pass; controls of affected releases must show the bug."""
    problems, control_notes, patched_notes = [], [], []
    for key, result in sorted(results.items()):
        if key == "copytruncate":
            continue
        scenario, kind = key.split("/")
        if "error" in result:
            problems.append("{}: harness error: {}".format(key, result["error"]))
            continue
        if kind == "patched":
            judge = judge_storm if scenario == "storm" else judge_rotate
            ok, why = judge(result)
            patched_notes.append("{}: {}".format(scenario, "pass" if ok else "; ".join(why)))
            if not ok:
                problems.append("{}: {}".format(key, "; ".join(why)))
        elif scenario == "storm":
            ok, why = judge_storm(result)
            control_notes.append("storm: {}".format("works" if ok else "; ".join(why)))
        else:
            shown, description = control_shows_bug(cell, result)
            control_notes.append("{}: {}".format(scenario, description))
            if cell["family"] != SYNC and not shown:
                problems.append("{}: control did not show the bug: {}".format(key, description))
    return {"ok": not problems, "problems": problems, "control": control_notes, "patched": patched_notes}
