#!/usr/bin/env python3
"""translations.py - keeps the Simplified Chinese (zh-CN) pages in step with the English ones.

  python3 tests/translations.py                       each pair: in step, or what differs
  python3 tests/translations.py --stamp FILE [...]    after bringing FILE (a translation) in
                                                      step with its English page, record that
                                                      page's present state in FILE's first line

A translation's first line names its English page and that page's SHA-256 (first 12 hex
digits) as it was when the translation last matched it:
    <!-- source: README.md sha256:0123456789ab -->
A page written in Chinese only says `<!-- source: none ... -->` and is not paired.

A pair is in step when
  - the English page has not changed since (its hash is the recorded one);
  - every fenced code block (``` to ```: commands, output, transcripts, diagrams, C) and every
    HTML comment line is the same, in the same order, byte for byte;
  - the headings have the same levels in the same order;
  - the same test ids appear, as many times each, and the same inline code spans (`...`);
  - each page links to the other near its top.
test_translations.py checks every pair; this file is also what it imports. Python 3 standard
library only.
"""
import argparse
import collections
import glob
import hashlib
import os
import re
import sys

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_LINE = re.compile(r"^<!-- source: (\S+) sha256:([0-9a-f]{12}|PENDING) -->$")
NO_SOURCE = "<!-- source: none"
TEST_ID = re.compile(r"\b(test_(?:lesson\d\d|peers|harness|docs)\.[A-Z]\w*(?:\.test_\w+)?)\b")
INLINE_CODE = re.compile(r"`([^`]+)`")  # a span may run onto the next line
HEADING = re.compile(r"^(#{1,6}) ")
TOP_LINES = 4  # the language switch sits within a page's first lines
# The English pages that must have a translation, and where it lives.
REQUIRED = {"README.md": "README.zh-CN.md"}
REQUIRED.update({"docs/%s.md" % name: "docs/zh-CN/%s.md" % name
                 for name in ("index", "instructors", "troubleshooting", "windows",
                              "benchmarks")})


def required_pairs():
    """{English page: its translation}, paths relative to the lab: every lesson guide too."""
    pairs = dict(REQUIRED)
    for guide in sorted(glob.glob(os.path.join(LAB_DIR, "lessons", "*", "README.md"))):
        english = os.path.relpath(guide, LAB_DIR)
        pairs[english] = english[:-len(".md")] + ".zh-CN.md"
    return pairs


def translations():
    """Every translation in the lab, relative to it (pages written in Chinese only left out)."""
    found = glob.glob(os.path.join(LAB_DIR, "*.zh-CN.md"))
    found += glob.glob(os.path.join(LAB_DIR, "lessons", "*", "*.zh-CN.md"))
    found += glob.glob(os.path.join(LAB_DIR, "docs", "zh-CN", "*.md"))
    return sorted(os.path.relpath(path, LAB_DIR) for path in found
                  if not read(os.path.relpath(path, LAB_DIR)).startswith(NO_SOURCE))


def read(relative):
    with open(os.path.join(LAB_DIR, relative), encoding="utf-8") as page:
        return page.read()


def digest(relative):
    """The page's text (its lines' ends as "\n", also in a Windows checkout), hashed."""
    return hashlib.sha256(read(relative).encode("utf-8")).hexdigest()[:12]


def source_of(translation):
    """(English page relative to the lab, recorded hash) from a translation's first line."""
    first = read(translation).split("\n", 1)[0]
    match = SOURCE_LINE.match(first)
    if not match:
        raise ValueError("%s: line 1 must be '<!-- source: FILE sha256:HASH -->', not %r"
                         % (translation, first))
    english = os.path.normpath(os.path.join(os.path.dirname(translation), match.group(1)))
    return english, match.group(2)


def blocks(text):
    """The fenced code blocks and HTML comment lines, in order, each as one string."""
    found, lines, number = [], text.split("\n"), 0
    while number < len(lines):
        line = lines[number]
        if line.lstrip().startswith("```"):
            end = number + 1
            while end < len(lines) and not lines[end].lstrip().startswith("```"):
                end += 1
            found.append("\n".join(lines[number:end + 1]))
            number = end + 1
            continue
        if line.startswith("<!--") and not SOURCE_LINE.match(line):
            found.append(line)
        number += 1
    return found


def prose(text):
    """The text outside the fenced code blocks (inline code and test ids live there)."""
    return re.sub(r"(?ms)^\s*```.*?^\s*```[^\n]*$", "", text)


def headings(text):
    return [len(match.group(1)) for line in prose(text).split("\n")
            for match in [HEADING.match(line)] if match]


def differences(translation):
    """What keeps a translation and its English page apart: a list of sentences, [] if none."""
    english, recorded = source_of(translation)
    if not os.path.isfile(os.path.join(LAB_DIR, english)):
        return ["%s names %s, which does not exist" % (translation, english)]
    found = []
    if recorded != digest(english):
        found.append("%s changed since %s was last brought in step with it: update the "
                     "translation, then run python3 tests/translations.py --stamp %s"
                     % (english, translation, translation))
    theirs, ours = read(english), read(translation)
    found += compare_lists(english, translation, "code blocks and HTML comments",
                           blocks(theirs), blocks(ours))
    if headings(theirs) != headings(ours):
        found.append("%s and %s: the headings differ (levels %s against %s)"
                     % (english, translation, headings(theirs), headings(ours)))
    # Test ids as many times each (a claims table names each once per claim); inline code
    # once at least (a sentence said another way may name `recv()` once, not twice).
    for what, pattern, once in (("test ids", TEST_ID, False),
                                ("inline code spans", INLINE_CODE, True)):
        counted = [collections.Counter(" ".join(found.split())  # a span's line break is a space
                                       for found in pattern.findall(prose(text)))
                   for text in (theirs, ours)]
        if once:
            counted = [collections.Counter(set(count)) for count in counted]
        if counted[0] != counted[1]:
            only = lambda a, b: sorted((a - b).elements())[:5]
            found.append("%s and %s: the %s differ; only in the English: %s; only in the "
                         "translation: %s" % (english, translation, what,
                                              only(counted[0], counted[1]),
                                              only(counted[1], counted[0])))
    found += links(english, translation, theirs, ours)
    return found


def compare_lists(english, translation, what, theirs, ours):
    for index, (a, b) in enumerate(zip(theirs, ours)):
        if a != b:
            return ["%s and %s: %s number %d differs:\n  English:     %s\n  translation: %s"
                    % (english, translation, what, index + 1, a[:300], b[:300])]
    if len(theirs) != len(ours):
        return ["%s and %s: %d %s against %d" % (english, translation, len(theirs), what,
                                                 len(ours))]
    return []


def links(english, translation, theirs, ours):
    """Each page must link to the other within its first lines."""
    found = []
    for page, text, other in ((english, theirs, translation), (translation, ours, english)):
        target = os.path.relpath(os.path.join(LAB_DIR, other),
                                 os.path.dirname(os.path.join(LAB_DIR, page)))
        top = "\n".join(text.split("\n")[:TOP_LINES])
        if "](%s)" % target.replace(os.sep, "/") not in top:
            found.append("%s does not link to %s in its first %d lines" % (page, target,
                                                                          TOP_LINES))
    return found


def stamp(translation):
    english, _ = source_of(translation)
    text = read(translation)
    first, rest = text.split("\n", 1)
    relative = SOURCE_LINE.match(first).group(1)
    with open(os.path.join(LAB_DIR, translation), "w", encoding="utf-8") as page:
        page.write("<!-- source: %s sha256:%s -->\n%s" % (relative, digest(english), rest))


def main():
    parser = argparse.ArgumentParser(description="Are the zh-CN pages in step with the English?")
    parser.add_argument("--stamp", nargs="+", metavar="FILE",
                        help="record the English page's present state in each translation")
    arguments = parser.parse_args()
    if arguments.stamp:
        for path in arguments.stamp:
            stamp(os.path.relpath(os.path.abspath(path), LAB_DIR))
        return 0
    status = 0
    for english, translation in sorted(required_pairs().items()):
        if not os.path.isfile(os.path.join(LAB_DIR, translation)):
            print("%s: no translation (%s)" % (english, translation))
            status = 1
    for translation in translations():
        problems = differences(translation)
        print("%s: %s" % (translation, "in step" if not problems else "NOT in step"))
        for problem in problems:
            print("  " + problem)
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(main())
