"""check_logrotate's parser and signal reader on sample configs written to a temp dir.

(The review against a running gunicorn is tests/test_check_logrotate.py, e2e.)"""

import os

import pytest

from uvicorn_usr1_patch import check_logrotate
from uvicorn_usr1_patch.check_target import CheckError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_options_scripts_and_defaults(tmp_path):
    conf = write(
        tmp_path,
        "app.conf",
        "# global defaults\n"
        "compress\n"
        "rotate 7\n"
        "/srv/app/log/access.log /srv/app/log/error.log {\n"
        "    daily\n"
        "    delaycompress\n"
        "    create 0640 app app\n"
        "    postrotate\n"
        "        [ -s /run/g.pid ] && { kill -USR1 $(cat /run/g.pid); }\n"
        "    endscript\n"
        "}\n"
        '"/srv/other/*.log" {\n'
        "    nocompress\n"
        "}\n",
    )
    first, second = check_logrotate.parse(conf)
    assert first.patterns == ["/srv/app/log/access.log", "/srv/app/log/error.log"]
    assert first.where == conf + ":4"
    assert first.get("compress") is True  # the default before any stanza
    assert first.get("delaycompress") is True
    assert first.get("rotate") == ["7"]
    assert first.get("create") == ["0640", "app", "app"]
    text, where = first.scripts["postrotate"]
    assert "{ kill -USR1 $(cat /run/g.pid); }" in text and where == conf + ":8"
    assert second.patterns == ["/srv/other/*.log"]
    assert second.get("compress") is False  # nocompress: the later word wins
    assert second.get("missing", "default") == "default"


def test_patterns_on_lines_before_the_brace(tmp_path):
    conf = write(tmp_path, "c", "/var/log/a.log\n/var/log/b.log\n{\n  copytruncate\n}\n")
    (stanza,) = check_logrotate.parse(conf)
    assert stanza.patterns == ["/var/log/a.log", "/var/log/b.log"]
    assert stanza.where == conf + ":1"
    assert stanza.get("copytruncate") is True


def test_include_a_directory_in_order_skipping_taboo_names(tmp_path):
    d = tmp_path / "logrotate.d"
    d.mkdir()
    write(d, "b", "/b.log {\n}\n")
    write(d, "a", "/a.log {\n}\n")
    write(d, "c.dpkg-old", "/old.log {\n}\n")
    write(d, "d~", "/backup.log {\n}\n")
    conf = write(tmp_path, "main", "weekly\ninclude {}\n/main.log {{\n}}\n".format(d))
    assert [s.patterns for s in check_logrotate.parse(conf)] == [["/a.log"], ["/b.log"], ["/main.log"]]


def test_include_of_a_missing_path_is_nothing(tmp_path):
    conf = write(tmp_path, "main", "include /nonexistent/logrotate.d\n/x.log {\n}\n")
    assert [s.patterns for s in check_logrotate.parse(conf)] == [["/x.log"]]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("/a {\n /b {\n}\n}\n", "nested"),
        ("/a {\n daily\n", "not closed"),
        ("}\n", "without a stanza"),
        ("/a {\n postrotate\n  kill -HUP 1\n}\n", "no endscript"),
        ("/a {\n include /etc/x\n}\n", "inside a stanza"),
        ("/a\n", "without a stanza"),
    ],
)
def test_malformed_configs_are_errors(tmp_path, text, needle):
    conf = write(tmp_path, "bad", text)
    with pytest.raises(CheckError) as err:
        check_logrotate.parse(conf)
    assert needle in str(err.value)


def test_a_config_including_itself_is_an_error(tmp_path):
    conf = str(tmp_path / "loop")
    write(tmp_path, "loop", "include {}\n".format(conf))
    with pytest.raises(CheckError, match="includes itself"):
        check_logrotate.parse(conf)


def test_not_a_regular_file_and_too_large(tmp_path):
    with pytest.raises(CheckError, match="not a regular file"):
        check_logrotate.parse(str(tmp_path))
    big = write(tmp_path, "big", "#" * (check_logrotate.CONFIG_MAX + 1))
    with pytest.raises(CheckError, match="larger than"):
        check_logrotate.parse(big)
    with pytest.raises(CheckError, match="cannot read"):
        check_logrotate.parse(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("/srv/app/log/*.log", "/srv/app/log/access.log", True),
        ("/srv/app/log/*.log", "/srv/app/log/sub/access.log", False),  # `*` stays in one component
        ("/srv/app/log/access.lo?", "/srv/app/log/access.log", True),
        ("/srv/*/log/*.log", "/srv/app/log/x.log", True),
        ("/srv/app/log/*.log", "/srv/app/log/access.log.1", False),
    ],
)
def test_matches_like_glob3(pattern, path, expected):
    assert check_logrotate.matches(pattern, path) is expected


def test_stanzas_for_the_later_stanza_wins(tmp_path):
    conf = write(tmp_path, "c", "/l/*.log {\n}\n/l/access.log {\n}\n")
    first, second = check_logrotate.parse(conf)
    found = check_logrotate.stanzas_for([first, second], ["/l/access.log", "/l/error.log"])
    assert found == [(first, ["/l/error.log"]), (second, ["/l/access.log"])]


def test_files_of_lists_existing_files_only(tmp_path):
    (tmp_path / "a.log").write_text("")
    (tmp_path / "b.log").mkdir()
    conf = write(tmp_path, "c", "{}/*.log {{\n}}\n".format(tmp_path))
    (stanza,) = check_logrotate.parse(conf)
    assert check_logrotate.files_of(stanza) == [str(tmp_path / "a.log")]


@pytest.mark.parametrize(
    "script, found",
    [
        ('kill -USR1 "$(cat /run/gunicorn.pid)"', [("kill", "/run/gunicorn.pid")]),
        ("kill -s USR1 `cat /run/g.pid`", [("kill", "/run/g.pid")]),
        ("kill -SIGUSR1 $(< /run/g.pid)", [("kill", "/run/g.pid")]),
        ("kill -10 4242", [("kill", 4242)]),
        ("PID=$(cat /run/g.pid); kill -USR1 $PID", [("kill", "/run/g.pid")]),
        ("kill -USR1 $something", [("kill", None)]),
        ("killall -s USR1 gunicorn", [("killall", "gunicorn")]),
        ("pkill -USR1 -f gunicorn", [("pkill", "gunicorn")]),
        ("systemctl kill -s USR1 --kill-whom=main app.service", [("systemctl-main", "app.service")]),
        ("systemctl kill -s USR1 app.service", [("systemctl", "app.service")]),
        ("kill -HUP $(cat /run/nginx.pid)", []),
        ("[ -s /run/g.pid ] && kill -USR1 $(cat /run/g.pid) || true", [("kill", "/run/g.pid")]),
    ],
)
def test_signals_in_a_script(script, found):
    assert check_logrotate.signals(script) == found


def test_the_parser_reads_the_debian_default_if_there():
    if not os.path.exists("/etc/logrotate.conf"):
        pytest.skip("no /etc/logrotate.conf on this machine")  # pragma: no cover
    stanzas = check_logrotate.parse("/etc/logrotate.conf")
    assert all(s.patterns for s in stanzas)
