"""The manual pages and the bash completion that meson builds next to the
binary (BUILD/docs/gatherd.8, BUILD/docs/gatherd.conf.5,
BUILD/completion/gatherd), held against the binary itself: what `gatherd
--help` lists, the columns of the results view, the options of
`gatherd check-config`.

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
COMPLETION = BUILD / "completion" / "gatherd"
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


# ---------------------------------------------------------------- completion

def complete(*words):
    """COMPREPLY for the command line `words` (the last one being
    completed), as bash computes it with the built completion loaded."""
    if not COMPLETION.is_file():
        pytest.fail("%s was not built" % COMPLETION)
    script = r'''
source "$1" || exit 1
shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
[[ $(complete -p gatherd) == "complete -F _gatherd gatherd" ]] || exit 3
_gatherd gatherd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "_",
                        str(COMPLETION), *words],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    return sorted(w for w in r.stdout.split("\n") if w)


def config_keys(tmp_path):
    """The "section.key" names of the binary's own option table, from
    `gatherd check-config` with every default."""
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    r = subprocess.run([GATHERD_BIN, "check-config", "-c", str(empty),
                        "--set", "gatherd.queue_file=%s/q" % tmp_path,
                        "--set", "gatherd.database=%s/d" % tmp_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    keys, section = [], None
    for line in r.stdout.splitlines():
        m = re.fullmatch(r"\[([a-z]+)\]", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"([a-z][a-z0-9_]*) =", line)
        if m:
            keys.append("%s.%s" % (section, m.group(1)))
    assert len(keys) > 20, r.stdout
    return sorted(set(keys))


def test_complete_command():
    """gatherd st<TAB> is status; gatherd <TAB> lists every command."""
    assert complete("gatherd", "st") == ["status"]
    assert complete("gatherd", "") == sorted(
        ["submit", "status", "refetch", "prune", "cat", "check-config"])


def test_complete_status_options():
    """gatherd status --<TAB>: the options of status, not the daemon's."""
    got = complete("gatherd", "status", "--")
    assert {"--config", "--json", "--hosts", "--check", "--help"} <= set(got)
    assert "--once" not in got and "--set" not in got


def test_complete_set_keys(tmp_path):
    """gatherd --set fetch.max_<TAB> offers the [fetch] max_* keys, and
    --set <TAB> exactly the keys of the binary's option table (the list is
    made from config/gatherd.conf at build time, not copied by hand)."""
    keys = config_keys(tmp_path)
    want = [k + "=" for k in keys if k.startswith("fetch.max_")]
    assert "fetch.max_in_flight=" in want and len(want) >= 5
    assert complete("gatherd", "--set", "fetch.max_") == want
    # --set=KEY: bash splits the word at "=".
    assert complete("gatherd", "--set", "=", "fetch.max_") == want
    assert complete("gatherd", "check-config", "--set", "fetch.max_") == want
    assert complete("gatherd", "--set", "") == [k + "=" for k in keys]
    # The value of a key is free text.
    assert complete("gatherd", "--set", "fetch.max_in_flight", "=", "") == []


def test_complete_option_values(tmp_path):
    """-c completes file names; refetch --error the error kinds of
    src/errkind.c; --state the one state it takes."""
    (tmp_path / "my.conf").write_text("")
    (tmp_path / "other").write_text("")
    assert complete("gatherd", "-c", str(tmp_path / "my")) == \
        [str(tmp_path / "my.conf")]
    assert complete("gatherd", "status", "--config", str(tmp_path / "o")) \
        == [str(tmp_path / "other")]
    kinds = re.findall(r'\[ERR_[A-Z0-9_]+\] = "([a-z0-9_]+)"',
                       (REPO / "src" / "errkind.c").read_text())
    assert complete("gatherd", "refetch", "--error", "") == sorted(kinds)
    assert complete("gatherd", "refetch", "--state", "f") == ["failed"]


def test_complete_every_option_of_help():
    """For each command of `gatherd --help`, the completion offers every
    option the usage line gives it."""
    for cmd, opts in help_usage().items():
        words = ["gatherd", "-"] if cmd == "daemon" else \
            ["gatherd", cmd, "-"]
        got = set(complete(*words))
        assert opts <= got, "gatherd %s: %s not completed" % (
            cmd, sorted(opts - got))
