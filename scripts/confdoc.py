#!/usr/bin/env python3
"""Documentation made from config/gatherd.conf, so that it cannot drift from
the file that tests/unit/test_config.c holds against the option table.

  confdoc.py man TEMPLATE.scd.in gatherd.conf config.c OUTPUT.scd
      gatherd.conf(5) in scdoc: TEMPLATE with its @OPTIONS@ line replaced by
      every section and key of gatherd.conf: the prose of its comment, the
      type (from the option table in config.c), the default, the range and
      whether SIGHUP changes it (from the comment's "Default ..." sentence).
  confdoc.py completion TEMPLATE.bash gatherd.conf errkind.c OUTPUT
      the bash completion: @SET_KEYS@ becomes the "section.key" names for
      --set, @ERROR_KINDS@ the error kinds of errkind.c (for refetch
      --error).

gatherd.conf's layout (see the file): a header comment, then `[section]`
lines, each followed by blocks separated by blank lines; a block is comment
lines (`# text`, prose) ending with a sentence "Default X[, range A..B].
Reloadable." (or "Needs a restart."), then the key line `#key = default`.
"""
import re
import sys

# The option table's macros (src/config.c) and what the page calls them.
TYPES = {
    "INT": "integer",
    "INT64": "size",
    "BOOL": "boolean",
    "LEVEL": "log level",
    "STR": "string",
    "PATH": "path",
    "LIST": "list",
    "ENUM": "enumeration",
}
UNITS = (("_ms", "milliseconds"), ("_s", "seconds"))

KEY_LINE = re.compile(r"^#?([a-z][a-z0-9_]*) =(?: (.*))?$")
DEFAULT = re.compile(r"^Default (?P<def>.+?)(?:, range (?P<range>.+?))?\.\s+"
                     r"(?P<rl>Reloadable|Needs a restart)\.$")


def parse_conf(path):
    """[(section, [(key, default, [paragraph...], default_sentence)])]."""
    sections = []
    prose = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                prose = []
                continue
            m = re.fullmatch(r"\[([a-z]+)\]", line)
            if m:
                sections.append((m.group(1), []))
                prose = []
                continue
            m = KEY_LINE.match(line)
            if m and not line.startswith("# "):
                if not sections:
                    sys.exit("%s:%d: key before any section" % (path, n))
                sections[-1][1].append(
                    (m.group(1), m.group(2) or "", *split_default(prose)))
                prose = []
                continue
            if line.startswith("#"):
                prose.append(line[1:].strip())
                continue
            sys.exit("%s:%d: not a comment, section or key line: %r"
                     % (path, n, line))
    return sections


def split_default(lines):
    """The comment's paragraphs (a "#" line alone separates them), and its
    sentence that says the default, range and reloadability: from the last
    line beginning "Default " to the end."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Default ")]
    cut = starts[-1] if starts else len(lines)
    sentence = re.sub(r"\s+", " ", " ".join(lines[cut:])).strip()
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in
                  "\n".join(lines[:cut]).split("\n\n") if p.strip()]
    return paragraphs, sentence


def parse_table(path):
    """{"section.key": (macro, [args])} from the option table of config.c,
    and the enumerations' value lists {name: [values]}."""
    text = open(path, encoding="utf-8").read()
    names = {}
    for m in re.finditer(r"static const char \*const (\w+)\[\] = \{(.*?)\};",
                         text, re.S):
        names[m.group(1)] = re.findall(r'"([^"]*)"', m.group(2))
    opts = {}
    for m in re.finditer(r"\bOPTION_([A-Z0-9]+)\(", text):
        args = split_args(text, m.end())
        if len(args) < 2 or not all(a.startswith('"') for a in args[:2]):
            continue  # the macro's definition, not a use
        name = "%s.%s" % (args[0].strip('"'), args[1].strip('"'))
        opts[name] = (m.group(1), args)
    return opts, names


def split_args(text, i):
    """The comma-separated arguments of the call whose "(" ends at i."""
    args, cur, depth, quote = [], "", 0, False
    while i < len(text):
        c = text[i]
        i += 1
        if quote:
            cur += c
            if c == "\\":
                cur += text[i]
                i += 1
            elif c == '"':
                quote = False
            continue
        if c == '"':
            quote = True
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        cur += c
    args.append(cur.strip())
    return [re.sub(r"\s+", " ", a) for a in args]


def esc(text):
    """Text that scdoc prints as it is."""
    text = re.sub(r"([\\*_])", r"\\\1", text)
    # At the start of a line these begin a heading, a list or a table.
    if re.match(r"[#\-.\[|:]", text):
        text = "\\" + text
    return text


def type_text(name, table, enums):
    key = name.split(".", 1)[1]
    if name not in table:
        print("confdoc: %s is not in the option table" % name,
              file=sys.stderr)
        return None
    macro, args = table[name]
    t = TYPES.get(macro)
    if t is None:
        print("confdoc: %s: unknown option macro OPTION_%s; its type is "
              "left out" % (name, macro), file=sys.stderr)
        return None
    if macro == "ENUM" and len(args) > 4 and args[4] in enums:
        return "enumeration (%s)" % ", ".join(enums[args[4]])
    if macro == "LEVEL":
        return "log level (error, warn, info, debug)"
    if macro == "INT":
        for suffix, unit in UNITS:
            if key.endswith(suffix):
                return "%s, in %s" % (t, unit)
    if macro == "LIST":
        return "list (the key may be given several times)"
    return t


def option_scd(section, key, default, paragraphs, sentence, table, enums):
    name = "%s.%s" % (section, key)
    out = ["*%s*" % esc(key)]
    for p in paragraphs:
        out.append("\t" + esc(p))
        out.append("")
    facts = []
    t = type_text(name, table, enums)
    if t:
        facts.append("Type: %s." % esc(t))
    m = DEFAULT.match(sentence)
    if m:
        shown = m.group("def")
        d = "*%s*" % esc(default) if default else "empty"
        # The comment may say more than the value: "104857600 (100 MiB)",
        # "gatherd/<version>".
        if shown.startswith(default + " (") and default:
            d += " " + esc(shown[len(default) + 1:])
        elif shown not in (default, "empty"):
            d += " (%s)" % esc(shown)
        facts.append("Default: %s." % d)
        if m.group("range"):
            facts.append("Range: %s." % esc(m.group("range")))
        facts.append("Reloadable." if m.group("rl") == "Reloadable"
                     else "Needs a restart (not reloadable).")
    else:
        print("confdoc: %s: no \"Default X[, range A..B].  Reloadable.\" "
              "sentence; shown as written" % name, file=sys.stderr)
        facts.append("Default: %s." % ("*%s*" % esc(default) if default
                                        else "empty"))
        if sentence:
            facts.append(esc(sentence))
    out.append("\t" + " ".join(facts))
    out.append("")
    return out


def man(template, conf, config_c, output):
    table, enums = parse_table(config_c)
    lines = []
    for section, options in parse_conf(conf):
        lines.append("## [%s]" % section)
        lines.append("")
        for key, default, paragraphs, sentence in options:
            lines += option_scd(section, key, default, paragraphs, sentence,
                                table, enums)
    text = open(template, encoding="utf-8").read()
    if "@OPTIONS@\n" not in text:
        sys.exit("%s: no @OPTIONS@ line" % template)
    text = text.replace("@OPTIONS@\n", "\n".join(lines).rstrip("\n") + "\n")
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


def completion(template, conf, errkind_c, output):
    keys = ["%s.%s" % (s, k) for s, opts in parse_conf(conf)
            for k, *_ in opts]
    kinds = re.findall(r'\[ERR_[A-Z0-9_]+\] = "([a-z0-9_]+)"',
                       open(errkind_c, encoding="utf-8").read())
    if not keys or not kinds:
        sys.exit("confdoc: no keys in %s or no error kinds in %s"
                 % (conf, errkind_c))
    text = open(template, encoding="utf-8").read()
    for mark, words in (("@SET_KEYS@", keys), ("@ERROR_KINDS@", kinds)):
        if mark not in text:
            sys.exit("%s: no %s" % (template, mark))
        text = text.replace(mark, " ".join(words))
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "man":
        man(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "completion":
        completion(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
