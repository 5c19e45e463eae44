#!/usr/bin/env python3
"""mutate.py - a mutation pass: does each lesson's test suite notice a program with one mistake?

  python3 tests/mutate.py --lesson 15 --list                 the mutants, without running
  python3 tests/mutate.py --lesson 08 --out /tmp/m08.json    build and test every mutant
  python3 tests/mutate.py --lesson 11 --limit 20             20 mutants spread over the files
  python3 tests/mutate.py --lesson 08 --file common/echo_server.c   mutate a helper file
  python3 tests/mutate.py --lesson 15 --mutant server.c:92:bound.0  one mutant by its id

Each mutant is the lesson's server.c or client.c (or a common/ file given with --file) with
ONE edit, made by one of these rules (C comments, strings and #if/#include lines are left
alone; a #define's body is code):

  release   delete a statement that calls close, lab_close, closesocket, shutdown, free,
            fclose, lab_client_remove, pthread_detach, pthread_join (a leak, a descriptor
            never closed, a thread never joined)
  bound     flip one relational operator: < to <=, <= to <, > to >=, >= to > (off by one)
  ready0    replace a readiness check - FD_ISSET(...), x & POLLIN/POLLOUT/EPOLLIN/...,
  ready1      want & LAB_WANT_READ/WRITE - by 0 (never ready), or by 1 (always ready)
  error     never take an error branch: "if (COND)" becomes "if ((COND) && 0)" (COND is
            still evaluated, so its calls still happen) for an if whose condition tests a
            failure (< 0, != 0, == NULL, !lab_socket_ok, ...) or whose body returns, breaks,
            continues, exits, dies or warns
  once      make a loop a single pass: "while (COND) BODY" becomes "if (COND) BODY";
            "do BODY while (COND);" becomes "do BODY while ((COND) && 0);"

Every mutant is built in a temporary directory (never in the working tree, which is not
touched; the directory is removed at the end) the way tests/variants.py builds its variants:
the lab's helper common/*.c, the lab's warnings from variants.WARNINGS - with -Werror, as
CMake builds the lab - and -g. A mutant the compiler refuses is counted as "not compiled"; one
whose preprocessed source is unchanged (an edit inside #ifdef _WIN32) as "not built here".
Neither counts in the score. --sanitizer address builds them with ASan+UBSan instead (as the
asan preset does) and tells run.py so: for mistakes only a sanitizer sees.

Each built mutant runs the lesson's tests - every test class of the lesson's label except the
MutationChecks ones (they test the tests against other programs, not this one) - through
tests/run.py, one class per run, with --server and --client pointing at the mutant pair (the
unchanged one built from the same sources). The first failing class kills it; the classes
that killed most so far run first. A mutant still running after --timeout seconds (default
120) is killed with every process it started and counted as killed, reported as "timeout".
Before the mutants, the unchanged pair runs the same classes: if that fails, the lesson is
not scored.

Printed per lesson: mutants generated / not built here / not compiled / compiled / killed /
timeout / survived, the score (killed + timeout) / compiled, the same without the survivors
that tests/notes/NN-slug.md explains as equivalent (lines "- `ID`: why" under its
"## Mutation pass" heading; ids name a line, so check them again after a program changes),
and every survivor as a unified diff of its one edit. --out FILE saves all of it as JSON
(keep it out of the repository).
Standard library only.
"""
import argparse
import concurrent.futures
import difflib
import glob
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS_DIR)
import variants  # noqa: E402  (the lab's warnings and the way it builds a changed copy)
from grade import lesson_libraries  # noqa: E402  (liburing for lesson 17's server)

LAB_DIR = variants.LAB_DIR
COMMON_DIR = os.path.join(LAB_DIR, "common")
RUN_PY = os.path.join(TESTS_DIR, "run.py")

RELEASE_CALLS = ("close", "lab_close", "closesocket", "shutdown", "free", "fclose",
                 "lab_client_remove", "pthread_detach", "pthread_join")
READINESS = re.compile(r"\b(?:\w+(?:\.|->))*\w+\s*(?<!&)&(?![&=])\s*(?:E?POLL(?:IN|OUT|PRI|HUP|ERR)"
                       r"|LAB_WANT_READ|LAB_WANT_WRITE)\b")
RELATIONAL = re.compile(r"<<=|>>=|<<|>>|->|<=|>=|<|>")
FLIPPED = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
FAILURE_TEST = re.compile(r"<\s*0\b|!=\s*0\b|==\s*-1\b|==\s*NULL\b|!\s*lab_socket_ok|"
                          r"\blab_error_is|\berrno\b|\bferror\s*\(")
ENDS_OR_REPORTS = re.compile(r"\b(return|break|continue|goto|exit|abort|lab_die|lab_warn|"
                             r"lab_usage_error)\b|fprintf\s*\(\s*stderr")


# ---- reading C just well enough ------------------------------------------------------------

def code_mask(text):
    """A list of booleans: True where text[i] is C code (not a comment, a string or char
    literal, nor a preprocessor line other than a #define's body)."""
    mask = [False] * len(text)
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            mask[i] = True
            i += 1
            continue
        if line_start and c == "#":  # a directive, with its continuation lines
            end = i
            while True:
                end = text.find("\n", end)
                if end < 0:
                    end = n
                    break
                if text[end - 1] != "\\":
                    break
                end += 1
            directive = re.match(r"#\s*define\s+\w+(\([^)]*\))?", text[i:end])
            if directive:  # the body of a macro is code
                body = code_mask(text[i + directive.end():end])
                mask[i + directive.end():end] = body
            i = end
            continue
        line_start = False
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == "\n":
            line_start = True
        mask[i] = True
        i += 1
    return mask


def matching(text, mask, start, opening="(", closing=")"):
    """Index just past the bracket that closes the one at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        if not mask[i]:
            continue
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced %s at %d" % (opening, start))


def skip_space(text, mask, i):
    """The next code character's index at or after i (comments skipped)."""
    while i < len(text) and (not mask[i] or text[i].isspace()):
        i += 1
    return i


# ---- the rules -----------------------------------------------------------------------------

def mutations(text):
    """Yields (rule, start, end, replacement, about) for every one-edit mutant of text."""
    mask = code_mask(text)
    in_code = lambda match: all(mask[match.start():match.end()])  # noqa: E731

    calls = "|".join(RELEASE_CALLS)
    for match in re.finditer(r"(?m)^[ \t]*((?:\(void\)\s*)?(%s)\s*\()" % calls, text):
        start = match.start(1)
        if not in_code(match):
            continue
        end = skip_space(text, mask, matching(text, mask, match.end(1) - 1))
        if end < len(text) and text[end] == ";":
            yield ("release", start, end + 1, "", "delete the call of %s()" % match.group(2))

    for match in RELATIONAL.finditer(text):
        if match.group() in FLIPPED and in_code(match):
            yield ("bound", match.start(), match.end(), FLIPPED[match.group()],
                   "%s becomes %s" % (match.group(), FLIPPED[match.group()]))

    checks = [(m.start(), matching(text, mask, m.end() - 1))
              for m in re.finditer(r"\bFD_ISSET\s*\(", text) if in_code(m)]
    checks += [(m.start(), m.end()) for m in READINESS.finditer(text) if in_code(m)]
    for start, end in sorted(checks):
        for value in ("0", "1"):
            yield ("ready" + value, start, end, value,
                   "the readiness check %s becomes %s" % (" ".join(text[start:end].split()), value))

    for match in re.finditer(r"\b(if|while)\s*\(", text):
        if not in_code(match):
            continue
        open_paren = match.end() - 1
        close = matching(text, mask, open_paren)
        condition = text[open_paren + 1:close - 1]
        after = skip_space(text, mask, close)
        body = ""
        if after < len(text) and text[after] == "{":
            body = text[after:matching(text, mask, after, "{", "}")]
        elif after < len(text):
            body = text[after:text.find(";", after) + 1]
        short = " ".join(condition.split())
        if match.group(1) == "if":
            if FAILURE_TEST.search(condition) or ENDS_OR_REPORTS.search(body):
                yield ("error", open_paren + 1, close - 1, "(%s) && 0" % condition,
                       "the branch of if (%s) is never taken" % short)
        elif after < len(text) and text[after] == ";":  # the end of a do ... while
            yield ("once", open_paren + 1, close - 1, "(%s) && 0" % condition,
                   "do ... while (%s) runs once" % short)
        else:
            yield ("once", match.start(), match.start() + len("while"), "if",
                   "while (%s) becomes if: one pass" % short)


class Mutant:
    def __init__(self, lesson, path, rule, start, end, replacement, about, text, number):
        self.lesson, self.path, self.rule, self.about = lesson, path, rule, about
        self.line = text.count("\n", 0, start) + 1
        self.source = text[:start] + replacement + text[end:]
        self.id = "%s:%d:%s.%d" % (short_name(lesson, path), self.line, rule, number)
        self.original = text
        self.result = {}

    def diff(self):
        name = os.path.relpath(self.path, LAB_DIR)
        return "".join(difflib.unified_diff(self.original.splitlines(True),
                                            self.source.splitlines(True),
                                            "a/" + name, "b/" + name, n=2))

    def edit(self):
        """The changed line(s), before and after, for --list."""
        old = self.original.splitlines()
        new = self.source.splitlines()
        index = self.line - 1
        span = len(old) - len(new)
        before = " ".join(" ".join(old[index:index + 1 + max(span, 0)]).split())
        after = " ".join((new[index] if index < len(new) else "").split())
        return before, after


def short_name(lesson, path):
    """server.c for the lesson's own files, common/NAME.c for the helper's."""
    lesson_dir = os.path.join(LAB_DIR, "lessons", lesson)
    if os.path.dirname(path) == lesson_dir:
        return os.path.basename(path)
    return os.path.relpath(path, LAB_DIR)


def generate(lesson, paths):
    mutants = []
    for path in paths:
        with open(path, encoding="utf-8") as source:
            text = source.read()
        seen = {}
        for rule, start, end, replacement, about in mutations(text):
            line = text.count("\n", 0, start) + 1
            number = seen.get((line, rule), 0)
            seen[(line, rule)] = number + 1
            mutants.append(Mutant(lesson, path, rule, start, end, replacement, about, text,
                                  number))
    return mutants


def spread(mutants, limit):
    """limit mutants taken evenly over the list (every file, every rule), in order."""
    if limit is None or limit >= len(mutants):
        return mutants
    return [mutants[i * len(mutants) // limit] for i in range(limit)]


# ---- building ------------------------------------------------------------------------------

SANITIZER_FLAGS = {  # as CMakeLists.txt builds the asan and tsan presets
    "address": ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer"],
    "thread": ["-fsanitize=thread", "-fno-omit-frame-pointer"],
}
SANITIZER = None  # --sanitizer: build with it, and tell run.py


def compiler():
    """The compiler command of tests/variants.py, with the lab's -Werror."""
    return variants.compiler_command(["-Werror", "-g"] + SANITIZER_FLAGS.get(SANITIZER, []))


class Builder:
    """Compiles the helper once into objects, then each program (or changed helper file)."""

    def __init__(self, work):
        self.work = work
        self.objects = {}
        os.makedirs(os.path.join(work, "common"))
        for path in sorted(glob.glob(os.path.join(COMMON_DIR, "*.c"))):
            obj = os.path.join(work, "common", os.path.basename(path)[:-2] + ".o")
            self.compile(["-c", path, "-o", obj])
            self.objects[path] = obj

    @staticmethod
    def compile(arguments):
        done = subprocess.run(compiler() + arguments, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True)
        return done.returncode, done.stdout

    @staticmethod
    def preprocessed(path, directory):
        done = subprocess.run(compiler() + ["-E", "-P", "-I", directory, path],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True)
        return done.stdout if done.returncode == 0 else None

    def pair(self, lesson, directory, changed=None):
        """Builds the lesson's server and client into directory, with changed = (path of a
        lesson's or helper's file, its new text) in place of that file. Returns
        ({role: program}, None), or (None, compiler output)."""
        os.makedirs(directory, exist_ok=True)
        objects = dict(self.objects)
        sources = {role: os.path.join(LAB_DIR, "lessons", lesson, role + ".c")
                   for role in ("server", "client")}
        if changed:
            path, text = changed
            copy = os.path.join(directory, os.path.basename(path))
            with open(copy, "w", encoding="utf-8") as out:
                out.write(text)
            if path in objects:
                obj = copy[:-2] + ".o"
                status, output = self.compile(["-c", copy, "-o", obj])
                if status != 0:
                    return None, output
                objects[path] = obj
            else:
                sources = {role: copy if source == path else source
                           for role, source in sources.items()}
        programs = {}
        for role, source in sources.items():
            program = os.path.join(directory, role)
            status, output = self.compile(["-o", program, source] + sorted(objects.values())
                                          + ["-pthread"] + lesson_libraries(source))
            if status != 0:
                return None, output
            programs[role] = program
        return programs, None


# ---- testing -------------------------------------------------------------------------------

def lesson_slug(number):
    matches = glob.glob(os.path.join(LAB_DIR, "lessons", "%02d-*" % int(number)))
    if not matches:
        raise SystemExit("mutate.py: no lesson %s in lessons/" % number)
    return os.path.basename(matches[0])


def test_classes(lesson):
    """The ids of the lesson's test classes (label lessonNN), MutationChecks ones left out."""
    import labtest
    import run
    label = "lesson" + lesson[:2]
    classes = []
    for name in sorted(os.listdir(TESTS_DIR)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        module = __import__(name[:-3])
        if run.lesson_label(module) != label:
            continue
        found = []
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, unittest.TestCase)
                    and value.__module__ == module.__name__
                    and not issubclass(value, labtest.MutationChecks)
                    and unittest.TestLoader().getTestCaseNames(value)):
                found.append(value)
        found.sort(key=lambda cls: inspect.getsourcelines(cls)[1])
        classes += ["%s.%s" % (module.__name__, cls.__name__) for cls in found]
    return classes


RUNNING = set()  # process groups of test runs going on now, to end them on an interrupt
RUNNING_LOCK = threading.Lock()


def end_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_class(test_class, programs, seconds):
    """Runs one test class against programs; returns (status, output): status 'passed',
    'failed' or 'timeout'."""
    command = [sys.executable, RUN_PY, test_class, "--server", programs["server"],
               "--client", programs["client"]] + (["--sanitizer", SANITIZER] if SANITIZER else [])
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("LAB_") or key == "LAB_TIMEOUT_SCALE"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=environment,
                               universal_newlines=True, errors="replace",
                               start_new_session=True)  # its own group: ended as one
    with RUNNING_LOCK:
        RUNNING.add(process)
    try:
        output, _ = process.communicate(timeout=max(seconds, 1))
        status = process.returncode
    except subprocess.TimeoutExpired:
        end_group(process)
        output, _ = process.communicate()
        return "timeout", output
    finally:
        end_group(process)  # anything it left behind in its group
        with RUNNING_LOCK:
            RUNNING.discard(process)
    if status in (0, 77):
        return "passed", output
    if status == 1:
        return "failed", output
    raise RuntimeError("run.py %s ended with status %d:\n%s" % (test_class, status, output))


class Killers:
    """Test classes in the order to try them: those that killed most mutants first."""

    def __init__(self, classes):
        self.classes = list(classes)
        self.kills = {name: 0 for name in classes}
        self.lock = threading.Lock()

    def order(self):
        with self.lock:
            return sorted(self.classes, key=lambda name: -self.kills[name])

    def killed(self, name):
        with self.lock:
            self.kills[name] += 1


def failing_tests(output):
    """The ids of the tests that failed, from run.py's verbose lines."""
    failed = []
    for name, where in re.findall(r"(?m)^(test_\w+) \(([\w.]+)\)(?: \.\.\.|\n.*\.\.\.)"
                                  r"[^\n]*?(?:FAIL|ERROR)$", output):
        failed.append(where if where.endswith("." + name) else where + "." + name)
    return failed


def test_pair(programs, killers, timeout):
    """Runs the classes until one fails; returns the result dictionary."""
    started = time.monotonic()
    for test_class in killers.order():
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            return {"status": "timeout", "killed_by": test_class,
                    "seconds": round(time.monotonic() - started, 1)}
        status, output = run_class(test_class, programs, left)
        if status != "passed":
            killers.killed(test_class)
            result = {"status": "killed" if status == "failed" else "timeout",
                      "killed_by": test_class,
                      "failing": failing_tests(output),
                      "seconds": round(time.monotonic() - started, 1)}
            if status == "failed":
                result["output_tail"] = output[-2000:]
            return result
    return {"status": "survived", "seconds": round(time.monotonic() - started, 1)}


def try_mutant(mutant, builder, killers, timeout, work):
    directory = tempfile.mkdtemp(prefix="m", dir=work)
    try:
        original = builder.preprocessed(mutant.path, os.path.dirname(mutant.path))
        changed = os.path.join(directory, os.path.basename(mutant.path))
        with open(changed, "w", encoding="utf-8") as out:
            out.write(mutant.source)
        if original is not None and builder.preprocessed(
                changed, os.path.dirname(mutant.path)) == original:
            return {"status": "not built here"}
        programs, errors = builder.pair(mutant.lesson, directory, (mutant.path, mutant.source))
        if programs is None:
            return {"status": "not compiled", "compiler": errors[-1500:]}
        return test_pair(programs, killers, timeout)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---- the report ----------------------------------------------------------------------------

COUNTED = ("killed", "timeout", "survived")


def explained(lesson):
    """{mutant id: explanation} of the survivors that tests/notes/LESSON.md explains as
    equivalent: lines "- `ID`: why" or "- `ID`, `ID` and `ID`: why" under its "## Mutation
    pass" heading. Ids name a line, so after a program changes the list must be checked
    again."""
    path = os.path.join(TESTS_DIR, "notes", lesson + ".md")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as notes:
        text = notes.read()
    section = re.search(r"(?ms)^## Mutation pass.*?(?=^## |\Z)", text)
    if not section:
        return {}
    mutant_id = r"`[^`\s]+:\d+:\w+\.\d+`"
    found = {}
    for match in re.finditer(r"(?m)^- ((?:%s(?:,\s*|\s+and\s+)?)+):(.*)$" % mutant_id,
                             section.group()):
        for name in re.findall(mutant_id, match.group(1)):
            found[name.strip("`")] = match.group(2).strip()
    return found


def summary(results):
    counts = {"generated": len(results)}
    for status in ("not built here", "not compiled") + COUNTED:
        counts[status] = sum(1 for r in results if r.get("status") == status)
    counts["compiled"] = sum(counts[status] for status in COUNTED)
    counts["equivalent"] = sum(1 for r in results if r.get("equivalent"))
    dead = counts["killed"] + counts["timeout"]
    counts["score"] = round(100.0 * dead / counts["compiled"], 1) if counts["compiled"] else None
    judged = counts["compiled"] - counts["equivalent"]
    counts["score without equivalents"] = round(100.0 * dead / judged, 1) if judged else None
    return counts


def percent(value):
    return "%.1f %%" % value if value is not None else "n/a"


def print_summary(lesson, counts, seconds):
    print("%s: %d generated, %d not built here, %d not compiled, %d compiled: %d killed, "
          "%d timeout, %d survived (%d explained as equivalent in tests/notes) - score %s, "
          "%s without the equivalent ones (%.0f s)"
          % (lesson, counts["generated"], counts["not built here"], counts["not compiled"],
             counts["compiled"], counts["killed"], counts["timeout"], counts["survived"],
             counts["equivalent"], percent(counts["score"]),
             percent(counts["score without equivalents"]), seconds))


def main():
    parser = argparse.ArgumentParser(
        description="Mutation pass: build one-edit mutants of a lesson's programs (or of "
                    "common/ files) and run the lesson's tests against each.",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lesson", action="append", required=True, metavar="NN",
                        help="lesson number (repeatable)")
    parser.add_argument("--file", action="append", metavar="PATH",
                        help="mutate this file (relative to the lab) instead of the lesson's "
                             "server.c and client.c; repeatable; e.g. common/echo_server.c")
    parser.add_argument("--mutant", action="append", metavar="ID",
                        help="only the mutant with this id (from --list); repeatable")
    parser.add_argument("--rule", action="append",
                        choices=("release", "bound", "ready0", "ready1", "error", "once"),
                        help="only mutants of this rule; repeatable")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="at most N mutants per lesson, spread evenly over the list")
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="mutants built and tested at once (default 1)")
    parser.add_argument("--timeout", type=float, default=120, metavar="SECONDS",
                        help="per mutant; then it and everything it started is killed "
                             "(counted as killed, reported as timeout) (default 120)")
    parser.add_argument("--out", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--sanitizer", choices=sorted(SANITIZER_FLAGS),
                        help="build with ASan+UBSan (address) or TSan (thread), as the asan and "
                             "tsan presets do, and run the tests as for those builds")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the unchanged programs")
    options = parser.parse_args()
    global SANITIZER
    SANITIZER = options.sanitizer

    plan = []
    for number in options.lesson:
        lesson = lesson_slug(number)
        if options.file:
            paths = [os.path.join(LAB_DIR, path) if not os.path.isabs(path) else path
                     for path in options.file]
        else:
            paths = [os.path.join(LAB_DIR, "lessons", lesson, role + ".c")
                     for role in ("server", "client")]
        for path in paths:
            if not os.path.isfile(path):
                raise SystemExit("mutate.py: no file %s" % path)
        mutants = generate(lesson, [os.path.abspath(path) for path in paths])
        if options.rule:
            mutants = [m for m in mutants if m.rule in options.rule]
        if options.mutant:
            mutants = [m for m in mutants if m.id in options.mutant]
        plan.append((lesson, spread(mutants, options.limit)))

    if options.list:
        for lesson, mutants in plan:
            print("%s: %d mutants" % (lesson, len(mutants)))
            for mutant in mutants:
                before, after = mutant.edit()
                print("  %-34s %s\n  %34s   - %s\n  %34s   + %s"
                      % (mutant.id, mutant.about, "", before, "", after))
        return 0

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    work = tempfile.mkdtemp(prefix="lab-mutate-")
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "timeout": options.timeout,
              "lessons": {}}
    status = 0
    try:
        builder = Builder(work)
        for lesson, mutants in plan:
            started = time.monotonic()
            classes = test_classes(lesson)
            killers = Killers(classes)
            print("%s: %d mutants, tests: %s" % (lesson, len(mutants), " ".join(classes)),
                  flush=True)
            if not options.no_baseline:
                programs, errors = builder.pair(lesson, os.path.join(work, "baseline-" + lesson))
                if programs is None:
                    raise SystemExit("mutate.py: the unchanged %s does not build:\n%s"
                                     % (lesson, errors))
                baseline = test_pair(programs, Killers(classes), 10 * options.timeout)
                print("%s: unchanged programs: %s (%.0f s)" % (lesson, baseline["status"],
                                                               baseline["seconds"]), flush=True)
                if baseline["status"] != "survived":
                    print("mutate.py: the tests fail the unchanged %s (%s): not scored\n%s"
                          % (lesson, baseline.get("failing") or baseline.get("killed_by"),
                             baseline.get("output_tail", "")), file=sys.stderr)
                    report["lessons"][lesson] = {"baseline": baseline}
                    status = 1
                    continue

            def one(mutant):
                mutant.result = try_mutant(mutant, builder, killers, options.timeout, work)
                return mutant
            with concurrent.futures.ThreadPoolExecutor(max(1, options.jobs)) as pool:
                for done, mutant in enumerate(pool.map(one, mutants), 1):
                    print("  [%d/%d] %-34s %-14s %s" % (done, len(mutants), mutant.id,
                                                        mutant.result["status"],
                                                        mutant.result.get("killed_by", "")),
                          flush=True)
            seconds = time.monotonic() - started
            notes = explained(lesson)
            for mutant in mutants:
                if mutant.result["status"] == "survived" and mutant.id in notes:
                    mutant.result["equivalent"] = notes[mutant.id]
            counts = summary([m.result for m in mutants])
            print_summary(lesson, counts, seconds)
            for mutant in mutants:
                if mutant.result["status"] == "survived":
                    print("survived %s: %s%s\n%s" % (
                        mutant.id, mutant.about,
                        " - equivalent, tests/notes: " + mutant.result["equivalent"]
                        if "equivalent" in mutant.result else "", mutant.diff()))
            report["lessons"][lesson] = {
                "counts": counts, "seconds": round(seconds, 1), "classes": classes,
                "mutants": [dict(id=m.id, file=os.path.relpath(m.path, LAB_DIR), line=m.line,
                                 rule=m.rule, about=m.about, diff=m.diff(), **m.result)
                            for m in mutants]}
    except KeyboardInterrupt:
        print("mutate.py: interrupted", file=sys.stderr)
        status = 130
    finally:
        with RUNNING_LOCK:
            for process in list(RUNNING):
                end_group(process)
        shutil.rmtree(work, ignore_errors=True)
        if options.out:
            with open(options.out, "w", encoding="utf-8") as out:
                json.dump(report, out, indent=1)
    if len(report["lessons"]) > 1:
        for lesson, entry in report["lessons"].items():
            if "counts" in entry:
                print_summary(lesson, entry["counts"], entry["seconds"])
    return status


if __name__ == "__main__":
    sys.exit(main())
