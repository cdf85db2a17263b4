#!/usr/bin/env python3
"""Summarize gatherd's test results.

Usage: summarize.py [--meson SUITE=testlog.json]... [--junit SUITE=report.xml]...
                    [--pass SUITE=NAME]... [--fail SUITE=NAME]...

--meson  a meson testlog.json (one JSON object per line with "name" and
         "result": OK, EXPECTEDFAIL, SKIP, FAIL, TIMEOUT, ERROR, ...)
--junit  a JUnit XML report, as written by pytest --junitxml
--pass   one extra passed test (a build that succeeded)
--fail   one extra failed test (a build that failed, a runner that crashed)

A results file that is missing or unreadable counts as one failed test.
Prints each suite's count and its failures, and as the last line
"N passed, N failed" (with ", N skipped" when any were skipped).  Exits 0
when nothing failed, else 1.
"""
import json
import sys
import xml.etree.ElementTree as ET

MESON_PASS = {'OK'}
MESON_SKIP = {'SKIP', 'EXPECTEDFAIL'}  # a known limitation is not a pass
DETAIL_LINES = 15


class Suite:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.skipped = 0
        self.failures = []  # (test name, [detail lines])

    def fail(self, test, details=()):
        self.failures.append((test, list(details)))


def tap_details(output):
    """The lines of a TAP log that explain a failure."""
    lines = [ln for ln in (output or '').splitlines()
             if ln.startswith('not ok') or ln.startswith('# ')
             or ln.startswith('Bail out!')
             or 'ERROR: ' in ln or 'runtime error' in ln]
    return lines[:DETAIL_LINES]


def read_meson(suite, path):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = f.readlines()
    except OSError as e:
        suite.fail('(results)', [f'cannot read {path}: {e.strerror}'])
        return
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
            name, result = entry['name'], entry['result']
        except (ValueError, KeyError, TypeError):
            suite.fail('(results)', [f'{path}:{n}: not a meson test record'])
            continue
        if result in MESON_PASS:
            suite.passed += 1
        elif result in MESON_SKIP:
            suite.skipped += 1
        else:
            suite.fail(f'{name} ({result})', tap_details(entry.get('stdout')))


def read_junit(suite, path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        suite.fail('(results)', [f'cannot read {path}: {e}'])
        return
    for case in root.iter('testcase'):
        cls = case.get('classname', '')
        name = f"{cls}::{case.get('name', '?')}" if cls else case.get('name', '?')
        bad = [c for c in case if c.tag in ('failure', 'error')]
        skipped = [c for c in case if c.tag == 'skipped']
        if bad:
            details = []
            for c in bad:
                msg = c.get('message') or ''
                details += [f'{c.tag}: {ln}' for ln in msg.splitlines()[:3]]
                text = (c.text or '').strip().splitlines()
                room = DETAIL_LINES - len(details)
                if text and room > 0:
                    details += text[-room:]
            suite.fail(name, details[:DETAIL_LINES])
        elif skipped:
            # Skipped, or an expected failure (a known limitation, marked
            # xfail): neither is a pass.
            suite.skipped += 1
        else:
            suite.passed += 1


def parse_args(argv):
    specs = []
    i = 0
    while i < len(argv):
        opt = argv[i]
        if opt in ('-h', '--help'):
            print(__doc__)
            sys.exit(0)
        if opt not in ('--meson', '--junit', '--pass', '--fail') or i + 1 >= len(argv):
            sys.exit(f'summarize.py: bad argument {opt!r} (see --help)')
        suite, sep, value = argv[i + 1].partition('=')
        if not sep or not suite:
            sys.exit(f'summarize.py: expected SUITE=VALUE after {opt}')
        specs.append((opt[2:], suite, value))
        i += 2
    return specs


def main(argv):
    suites = {}
    for kind, name, value in parse_args(argv):
        suite = suites.setdefault(name, Suite(name))
        if kind == 'meson':
            read_meson(suite, value)
        elif kind == 'junit':
            read_junit(suite, value)
        elif kind == 'pass':
            suite.passed += 1
        else:
            suite.fail(value)

    passed = failed = skipped = 0
    for suite in suites.values():
        line = f'== {suite.name}: {suite.passed} passed, {len(suite.failures)} failed'
        if suite.skipped:
            line += f', {suite.skipped} skipped'
        print(line)
        for test, details in suite.failures:
            print(f'  FAIL {test}')
            for d in details:
                print(f'      {d}')
        passed += suite.passed
        failed += len(suite.failures)
        skipped += suite.skipped

    total = f'{passed} passed, {failed} failed'
    if skipped:
        total += f', {skipped} skipped'
    print(total)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
