"""The manual pages that meson builds next to the binary (BUILD/docs/gatherd.8,
BUILD/docs/gatherd.conf.5), held against the binary itself: what `gatherd
--help` lists and the columns of the results view.

The pages are rendered with man-db's `man -l` at 80 columns; those tests
are skipped (with the reason) only when man is not installed.  Building the
pages needs scdoc at `meson setup` time: scripts/test installs both."""

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import GATHERD_BIN, REPO

BUILD = Path(GATHERD_BIN).resolve().parent
PAGES = {"gatherd.8": BUILD / "docs" / "gatherd.8",
         "gatherd.conf.5": BUILD / "docs" / "gatherd.conf.5"}
SCD8 = REPO / "docs" / "gatherd.8.scd"

HEADINGS = {
    "gatherd.8": ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS",
                  "THE QUEUE FILE", "SIGNALS", "ONE DAEMON PER DATABASE",
                  "THE DATABASE", "ERROR KINDS", "EXIT STATUS",
                  "ENVIRONMENT", "FILES", "SEE ALSO"],
    "gatherd.conf.5": ["NAME", "SYNOPSIS", "DESCRIPTION", "FORMAT",
                       "RELOADING", "OPTIONS", "EXAMPLE", "FILES",
                       "SEE ALSO"],
}

# scdoc markup that must never reach the reader: *bold* and _underline_
# around a word, headings, forced breaks, tables, roff escapes, and the
# template's placeholders.
LEAKS = [
    (re.compile(r"(?<![\w(\"])\*[^\s*][^*\n]*\*(?![\w)\"])"), "*bold*"),
    (re.compile(r"(?<![\w/])_[A-Za-z][^_\s]*_(?!\w)"), "_underline_"),
    (re.compile(r"^#+ ", re.M), "a # heading"),
    (re.compile(r"\+\+$", re.M), "a ++ line break"),
    (re.compile(r"^\s*[\[|:][\[\]<>=-] ", re.M), "table markup"),
    (re.compile(r"\\f[BIRP]|\\&|\\\(|\\e"), "a roff escape"),
    (re.compile(r"@[A-Z_]+@"), "a template placeholder"),
]


def page(name):
    p = PAGES[name]
    if not p.is_file():
        pytest.fail("%s was not built: scdoc was missing when meson "
                    "configured %s (apt-get install scdoc; meson setup "
                    "--reconfigure %s)" % (p, BUILD, BUILD))
    return p


def render(name):
    """The page as man shows it at 80 columns, without overstriking."""
    if shutil.which("man") is None:
        pytest.skip("man-db is not installed (apt-get install man-db)")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat",
               PAGER="cat")
    env.pop("MAN_KEEP_FORMATTING", None)
    r = subprocess.run(["man", "--warnings", "-l", str(page(name))],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", "groff warnings:\n" + r.stderr
    return re.sub(r".\x08", "", r.stdout)


def help_usage():
    """{command: set of options} from the usage lines of `gatherd --help`
    ("daemon" for the lines without a command)."""
    out = subprocess.run([GATHERD_BIN, "--help"], capture_output=True,
                         text=True, timeout=30).stdout
    usage = {}
    cmd = None
    for line in out.splitlines():
        m = re.match(r"(?:usage:)?\s+gatherd (\S+)?", line)
        if m or re.match(r"\s+\[", line):
            if m:
                word = (m.group(1) or "").strip()
                cmd = word if re.fullmatch(r"[a-z][a-z-]*", word) \
                    else "daemon"
            usage.setdefault(cmd, set()).update(
                re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", line))
        elif line == "":
            if usage:
                break
    assert "daemon" in usage and "submit" in usage, out
    return usage


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_renders(name):
    """man renders the page without a warning, every section heading is
    there, no line is wider than 80 columns, and no scdoc markup shows."""
    text = render(name)
    headings = [line for line in text.splitlines()
                if re.match(r"[A-Z][A-Z ]+$", line)]
    assert headings == HEADINGS[name], headings
    for line in text.splitlines():
        assert len(line) <= 80, "wider than 80 columns: %r" % line
    for rx, what in LEAKS:
        m = rx.search(text)
        assert not m, "%s leaks into the page: %r in\n%s" % (
            what, m.group(0), text[max(0, m.start() - 200):m.end() + 200])


def test_conf_page_lists_every_section():
    """gatherd.conf(5) has a subsection per section of config/gatherd.conf
    (tests/unit/test_manpage.c checks every key and default)."""
    text = render("gatherd.conf.5")
    conf = (REPO / "config" / "gatherd.conf").read_text()
    sections = re.findall(r"^\[([a-z]+)\]$", conf, re.M)
    assert re.findall(r"^   \[([a-z]+)\]$", text, re.M) == sections


def test_man8_has_every_command_and_option_of_help():
    """gatherd(8) has a synopsis line for every command of `gatherd
    --help` and describes each of its options."""
    src = SCD8.read_text()
    synopsis = src.split("# SYNOPSIS", 1)[1].split("\n# ", 1)[0]
    options = src.split("# OPTIONS", 1)[1].split("\n# ", 1)[0]
    terms = [line for line in options.splitlines() if line.startswith("*")]
    for cmd, opts in help_usage().items():
        if cmd != "daemon":
            assert "*gatherd %s*" % cmd in synopsis, cmd
        for opt in opts:
            rx = re.compile(r"(?<![\w-])%s(?![\w-])" % re.escape(opt))
            assert any(rx.search(t) for t in terms), \
                "%s (gatherd %s) is not described under OPTIONS" % (opt, cmd)


def results_columns(tmp_path):
    """The columns of the views results and latest of a database that
    gatherd made (an empty queue, --once)."""
    (tmp_path / "queue").write_text("")
    conf = tmp_path / "gatherd.conf"
    conf.write_text("[gatherd]\nqueue_file = queue\ndatabase = g.db\n")
    r = subprocess.run([GATHERD_BIN, "-c", str(conf), "--once"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(str(tmp_path / "g.db"))
    try:
        return {v: [row[1] for row in
                    db.execute("pragma table_info(%s)" % v)]
                for v in ("results", "latest")}
    finally:
        db.close()


def test_man8_describes_every_column_and_error_kind(tmp_path):
    """gatherd(8) describes each column of the results view (and says
    latest has the same ones), and each error kind of src/errkind.c."""
    src = SCD8.read_text()
    db_part = src.split("# THE DATABASE", 1)[1].split("\n# ", 1)[0]
    views = results_columns(tmp_path)
    assert views["latest"] == views["results"]
    for col in views["results"]:
        assert "*%s*" % col in db_part.splitlines(), \
            "column %s of results is not described" % col
    errors = src.split("# ERROR KINDS", 1)[1].split("\n# ", 1)[0]
    kinds = re.findall(r'\[ERR_[A-Z0-9_]+\] = "([a-z0-9_]+)"',
                       (REPO / "src" / "errkind.c").read_text())
    assert kinds
    for kind in kinds:
        assert "*%s*" % kind in errors.splitlines(), kind
