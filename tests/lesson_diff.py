#!/usr/bin/env python3
"""lesson_diff.py - what a lesson changes against the one before it, without the noise.

  python3 tests/lesson_diff.py 03                  lesson 03 against 02: server.c and client.c
  python3 tests/lesson_diff.py 06                  against 03: the lesson its header names
  python3 tests/lesson_diff.py 03 --role server    server.c only (or --role client)
  python3 tests/lesson_diff.py 10 --against 09     against any lesson you choose
  python3 tests/lesson_diff.py 03 --stat           only the counts: added, removed, folded
  python3 tests/lesson_diff.py --all               the counts for every lesson

A lesson is read against the one its server.c's header names ("Before: 05-nonblocking-many
(diff against 03-iterative-server ...)"): the lesson whose idea it changes. Without such a
name, against the lesson just before it.

A unified diff (as `diff -u`), with two kinds of change folded into one line each, because
they are not the lesson:
  - code that only MOVED INTO common/: a run of at least 4 removed lines (not counting
    lines of braces only) that also appears, one after another, in a file of common/ once
    whitespace, comments and a `lab_` prefix on names are ignored. "Nearly verbatim": the
    run then grows on both sides while it keeps step with that file, stepping over at
    most 2 lines that differ at a time; a function's first line (often renamed) and the
    comment above a block go with it. The marker names the file and its functions, and
    how many of the lines changed on the way (they are hidden too):
        @@ 19 lines moved to common/stream.c (lab_send_all), 3 of them changed on the way @@
  - the header comment (the leading /* ... */ of each file): "@@ header comment changed @@".
Every other line is shown as diff shows it. --stat prints, per file, the lines added and
removed that are still shown, the lines folded into markers, and the counts of the same
diff unfolded. Python 3 standard library only.
"""
import argparse
import difflib
import glob
import os
import re
import sys

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LESSONS_DIR = os.path.join(LAB_DIR, "lessons")
COMMON_DIR = os.path.join(LAB_DIR, "common")
MIN_RUN = 4      # a moved run has at least this many lines that are more than braces
MAX_GAP = 2      # runs this close (in changed lines) are one moved block
CONTEXT = 3      # lines of context around a change, as diff -u
ROLES = {"server": ["server.c"], "client": ["client.c"], "both": ["server.c", "client.c"]}


class UsageError(Exception):
    """A bad argument: printed with the usage line, exit status 2."""


def lessons():
    """{'03': 'lessons/03-iterative-server', ...}, in directory order."""
    found = {}
    for path in sorted(glob.glob(os.path.join(LESSONS_DIR, "[0-9][0-9]-*"))):
        if os.path.isdir(path):
            found[os.path.basename(path)[:2]] = path
    return found


def lesson_number(text):
    """'3', '03' or '03-iterative-server' as '03'; anything else is a UsageError."""
    match = re.fullmatch(r"(\d{1,2})(-[\w-]+)?/?", text.strip())
    if not match:
        raise UsageError("'%s' is not a lesson number (e.g. 03)" % text)
    number = "%02d" % int(match.group(1))
    known = lessons()
    if number not in known:
        raise UsageError("there is no lesson %s in lessons/ (there are %s)"
                         % (number, ", ".join(known)))
    return number


def read_lines(path):
    with open(path, encoding="utf-8") as source:
        return source.read().splitlines()


def header_length(lines):
    """How many lines the leading /* ... */ comment takes (0 if the file has none)."""
    if not lines or not lines[0].lstrip().startswith("/*"):
        return 0
    for index, line in enumerate(lines):
        if "*/" in line:
            return index + 1
    return 0


# ---- the "moved to common/" rule ------------------------------------------------------

COMMENTS = re.compile(r"/\*.*?\*/|//.*$")


def normalize(line):
    """A line as the rule compares it: no comments, no whitespace, no `lab_` prefixes.
    A line inside a comment block (starting with * or /*) normalizes to ''."""
    text = COMMENTS.sub("", line).strip()
    if text.startswith(("*", "/*")):
        return ""
    text = re.sub(r"\blab_", "", text)
    return re.sub(r"\s+", "", text)


def is_braces(key):
    return key.strip("{}();") == "" or key in ("}else{", "};")


FUNCTION = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\(")
TYPE = re.compile(r"^((?:struct|enum) \w+) \{")


def common_files():
    """[(relative name, [normalized line keys without blanks], [function of each key])]."""
    files = []
    for path in sorted(glob.glob(os.path.join(COMMON_DIR, "*.[ch]"))):
        keys, functions, current = [], [], None
        for line in read_lines(path):
            match = FUNCTION.match(line)
            if match and not line.rstrip().endswith(";") and not line.startswith("typedef"):
                current = match.group(1)
            match = TYPE.match(line)
            if match:
                current = match.group(1)
            key = normalize(line)
            if key:
                keys.append(key)
                functions.append(current)
            if line.startswith("}"):
                current = None
        files.append(("common/" + os.path.basename(path), keys, functions))
    return files


def find_moved(lines, removed, files):
    """The blocks of lines that moved to common/: [(first, last, file, functions, edited)],
    first and last being indexes into lines (inclusive). Only lines in the set removed
    (gone from the new lesson) may move, and braces, which belong to everybody."""
    positions = [i for i, line in enumerate(lines) if normalize(line)]
    keys = [normalize(lines[i]) for i in positions]
    movable = [i in removed or is_braces(key) for i, key in zip(positions, keys)]
    owner = [None] * len(keys)  # (file index, common key index) of each key found in common/
    k = 0
    while k < len(keys):
        run = longest_run(k, keys, movable, files)
        if run is None:
            k += 1
            continue
        f, start, length = run
        for step in range(length):
            owner[k + step] = (f, start + step)
        # Nearly verbatim: follow the common file on both sides of the run, stepping over
        # up to MAX_GAP lines that differ, as long as a line that is more than braces matches.
        for direction in (-1, 1):
            i, j = (k - 1, start - 1) if direction < 0 else (k + length, start + length)
            common = files[f][1]
            while True:
                step = next_match(i, j, direction, keys, movable, owner, common)
                if step is None:
                    break
                i, j = i + direction * step[0], j + direction * step[1]
                while (0 <= i < len(keys) and 0 <= j < len(common) and owner[i] is None
                       and movable[i] and keys[i] == common[j]):
                    owner[i] = (f, j)
                    i, j = i + direction, j + direction
        k += length
        while k < len(keys) and owner[k] is not None:
            k += 1
    return blocks(lines, positions, keys, owner, files)


def longest_run(k, keys, movable, files):
    """(file index, start, length) of the longest run of keys from k that some common file
    holds, one line after another, with at least MIN_RUN lines that are more than braces."""
    best = None
    for f, (_, common, _) in enumerate(files):
        for start in range(len(common)):
            length = 0
            while (k + length < len(keys) and start + length < len(common)
                   and movable[k + length] and keys[k + length] == common[start + length]):
                length += 1
            solid = sum(1 for key in keys[k:k + length] if not is_braces(key))
            if solid >= MIN_RUN and (best is None or length > best[2]):
                best = (f, start, length)
    return best


def next_match(i, j, direction, keys, movable, owner, common):
    """(lines skipped in the lesson, lines skipped in common) to the nearest pair of equal
    lines, each skip at most MAX_GAP, the lesson's skipped lines all movable; or None."""
    for total in range(0, 2 * MAX_GAP + 1):
        for di in range(max(0, total - MAX_GAP), min(total, MAX_GAP) + 1):
            dj = total - di
            a, b = i + direction * di, j + direction * dj
            if not (0 <= a < len(keys) and 0 <= b < len(common)):
                continue
            between = [i + direction * n for n in range(di + 1)]
            if any(owner[x] is not None or not movable[x] for x in between):
                continue
            if keys[a] == common[b] and not is_braces(keys[a]):
                return di, dj
    return None


def blocks(lines, positions, keys, owner, files):
    """Joins the found lines into blocks (one file, at most MAX_GAP other lines between)."""
    found = []  # [first key, last key, file index, lines changed on the way]
    for k, anchor in enumerate(owner):
        if anchor is None:
            continue
        if found and found[-1][2] == anchor[0] and k - found[-1][1] - 1 <= MAX_GAP:
            found[-1][3] += k - found[-1][1] - 1
            found[-1][1] = k
        else:
            found.append([k, k, anchor[0], 0])
    moved = []
    for first, last, f, edited in found:
        name, _, functions = files[f]
        names = []
        for k in range(first, last + 1):
            function = functions[owner[k][1]] if owner[k] is not None else None
            if function and function not in names:
                names.append(function)
        # A function whose body moved takes its first line (renamed, most likely) with it.
        brace = first if keys[first] == "{" else first - 1
        if (brace > 0 and keys[brace] == "{" and owner[brace - 1] is None
                and FUNCTION.match(lines[positions[brace - 1]])):
            first = brace - 1
            edited += 1
        first_line, last_line = positions[first], positions[last]
        # The blank and comment lines just before a block (its comment) go with it.
        while first_line > 0 and not normalize(lines[first_line - 1]):
            first_line -= 1
        moved.append((first_line, last_line, name, names, edited))
    return moved


# ---- the diff ---------------------------------------------------------------------------

class FileDiff:
    """One file of two lessons: the folded diff's lines and its counts."""

    def __init__(self, old_path, new_path, files):
        old, new = read_lines(old_path), read_lines(new_path)
        self.plain_added = self.plain_removed = 0
        for tag, i1, i2, j1, j2 in matcher(old, new).get_opcodes():  # the diff, unfolded
            if tag != "equal":
                self.plain_removed += i2 - i1
                self.plain_added += j2 - j1
        self.added = self.removed = self.folded = 0
        self.lines = []
        old_head, new_head = header_length(old), header_length(new)
        if old[:old_head] != new[:new_head]:
            self.folded += len(changed_lines(old[:old_head], new[:new_head]))
            self.lines.append("@@ header comment changed @@")
        self.diff_body(old[old_head:], new[new_head:], old_head, new_head, files)

    def diff_body(self, old, new, old_head, new_head, files):
        """Folds each moved block of old into one marker line, then diffs what is left."""
        removed = set()
        for tag, i1, i2, _, _ in matcher(old, new).get_opcodes():
            if tag != "equal":
                removed.update(range(i1, i2))
        markers = {}  # index in folded_old -> (marker text, lines folded)
        folded_old, old_numbers, index = [], [], 0
        for first, last, name, functions, edited in find_moved(old, removed, files):
            folded_old.extend(old[index:first])
            old_numbers.extend(range(index, first))
            marker = "@@ %d lines moved to %s" % (last - first + 1, name)
            if functions:
                marker += " (%s)" % ", ".join(functions)
            if edited:
                marker += ", %d of them changed on the way" % edited
            markers[len(folded_old)] = (marker + " @@", last - first + 1)
            folded_old.append("\0moved %d" % first)  # a line no file holds
            old_numbers.append(first)
            index = last + 1
        folded_old.extend(old[index:])
        old_numbers.extend(range(index, len(old)))
        old_numbers.append(len(old))
        for group in matcher(folded_old, new).get_grouped_opcodes(CONTEXT):
            first, last = group[0], group[-1]
            old_from, old_to = old_numbers[first[1]], old_numbers[last[2]]
            self.lines.append("@@ -%d,%d +%d,%d @@" % (
                old_from + old_head + 1, old_to - old_from,
                first[3] + new_head + 1, last[4] - first[3]))
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    self.lines.extend(" " + line for line in new[j1:j2])
                    continue
                for i in range(i1, i2):
                    if i in markers:
                        self.lines.append(markers[i][0])
                        self.folded += markers[i][1]
                    else:
                        self.lines.append("-" + folded_old[i])
                        self.removed += 1
                self.lines.extend("+" + line for line in new[j1:j2])
                self.added += j2 - j1


def matcher(old, new):
    """difflib's matcher, told that blank lines and lone braces may not anchor a match
    (they would cut a removed function into pieces around every "}")."""
    return difflib.SequenceMatcher(lambda line: line.strip() in ("", "{", "}", "};"),
                                   old, new, autojunk=False)


def changed_lines(old, new):
    """The lines of two headers that a plain diff would show as changed."""
    changed = []
    for tag, i1, i2, j1, j2 in matcher(old, new).get_opcodes():
        if tag != "equal":
            changed.extend(old[i1:i2] + new[j1:j2])
    return changed


def named_in_header(path):
    """The lesson a file's header says to diff against ("diff against NN-slug", "same
    client as NN"), or None."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as source:
        header = source.read(4000)
    match = re.search(r"diff against (\d\d)-[\w-]+|same client as (\d\d)\b", header)
    return (match.group(1) or match.group(2)) if match else None


def header_hint(new_path, against):
    """The lesson a file's header says to diff against, if it is not the one compared."""
    hinted = named_in_header(new_path)
    return hinted if hinted != against else None


def default_against(number, numbers):
    """What lesson NN is read against: the one its server.c's header names ("Before: ...
    (diff against NN-slug)"), else the lesson just before it; None for the first."""
    named = named_in_header(os.path.join(lessons()[number], "server.c"))
    if named in numbers and named != number:
        return named
    position = numbers.index(number)
    return numbers[position - 1] if position > 0 else None


def compare(number, against, role, stat, out):
    known = lessons()
    new_dir, old_dir = known[number], known[against]
    files = common_files()
    for name in ROLES[role]:
        old_path, new_path = os.path.join(old_dir, name), os.path.join(new_dir, name)
        old_rel = os.path.relpath(old_path, LAB_DIR)
        new_rel = os.path.relpath(new_path, LAB_DIR)
        missing = [p for p in (old_rel, new_rel) if not os.path.exists(os.path.join(LAB_DIR, p))]
        if missing:
            out.write("%s: not there\n" % ", ".join(missing))
            continue
        diff = FileDiff(old_path, new_path, files)
        if stat:
            out.write("%s vs %s  %-8s +%d -%d folded %d   (unfolded: +%d -%d)\n" % (
                os.path.basename(new_dir), os.path.basename(old_dir), name, diff.added,
                diff.removed, diff.folded, diff.plain_added, diff.plain_removed))
            continue
        out.write("--- %s\n+++ %s\n" % (old_rel, new_rel))
        if not diff.lines:
            out.write("(no difference)\n")
        for line in diff.lines:
            out.write(line + "\n")
        hint = header_hint(new_path, against)
        if hint and hint in known:
            out.write("(%s's header suggests reading it against lesson %s: "
                      "python3 tests/lesson_diff.py %s --against %s)\n"
                      % (new_rel, hint, number, hint))
        out.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="lesson_diff.py",
        description="Show what lesson NN changes against the lesson before it, with code "
                    "that only moved into common/ and the header comments folded away.")
    parser.add_argument("lesson", nargs="?", help="the lesson number, e.g. 03")
    parser.add_argument("--against", metavar="MM",
                        help="compare with lesson MM instead of the one the lesson's header "
                             "names (\"diff against NN-slug\"), or else the previous one")
    parser.add_argument("--role", choices=("server", "client", "both"), default="both",
                        help="which program to compare (default: both)")
    parser.add_argument("--stat", action="store_true",
                        help="print only the counts: lines added, removed, folded (and unfolded)")
    parser.add_argument("--all", action="store_true",
                        help="the counts (--stat) for every lesson against the one it is read "
                             "against")
    options = parser.parse_args(argv)
    try:
        if options.all:
            if options.lesson or options.against:
                raise UsageError("--all takes no lesson and no --against")
            numbers = list(lessons())
            for number in numbers[1:]:
                compare(number, default_against(number, numbers), options.role, True,
                        sys.stdout)
            return 0
        if options.lesson is None:
            raise UsageError("which lesson? e.g. lesson_diff.py 03 (or --all)")
        number = lesson_number(options.lesson)
        numbers = list(lessons())
        if options.against is not None:
            against = lesson_number(options.against)
            if against == number:
                raise UsageError("lesson %s against itself shows nothing" % number)
        else:
            against = default_against(number, numbers)
            if against is None:
                print("lesson %s is the first lesson: there is nothing before it to compare "
                      "with" % number)
                return 0
        compare(number, against, options.role, options.stat, sys.stdout)
        return 0
    except UsageError as error:
        parser.print_usage(sys.stderr)
        print("lesson_diff.py: error: %s" % error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `| head` stopped reading: not an error
        sys.stderr.close()
        sys.exit(0)
