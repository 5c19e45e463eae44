#!/usr/bin/env python3
"""grade.py - the lab's tests as a scorecard of a student's programs: per lesson, how many of
the tests of the student's programs passed, and for each failure the claim of the guide it
breaks and what happened, in words (never answered, answered the wrong bytes, closed the
connection, exited with status N, killed by signal S, refused to start).

  python3 tests/grade.py lesson08 --source ~/student/08            server.c/client.c, built here
  python3 tests/grade.py --source ~/student/lessons                every NN-slug/ found there
  python3 tests/grade.py --bin-dir ~/student/build/lessons         binaries: every lesson there
  python3 tests/grade.py lesson03 --server ~/student/server        one lesson, one program
  python3 tests/grade.py lesson05 lesson08 --bin-dir DIR --junit grades.xml   also JUnit XML

Only the tests of the student's programs count. The lab's self-checks (the classes that run
the lab's own wrong programs: MutationChecks, WrongServerTests and the like, and the
harness's and docs' tests) test the lab, not the student: they are not run, and the
scorecard says how many there were. Grading mode shortens the waits (5 s at most for an
answer or a printed line, 1 s for an answer once a wait of the lesson has expired; a test
still running after --budget seconds is stopped; --full-waits keeps the tests' own) and runs
tests in parallel (--jobs). Anything the tests print (measurements) goes to the --log file.
Exit status: 0 when every test passed or was skipped, 1 when any failed or did not build,
2 on a usage error. Standard library only; see docs/instructors.md.
"""
import argparse
import glob
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
import xml.etree.ElementTree as ElementTree

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
LAB_DIR = os.path.dirname(TESTS_DIR)
sys.path.insert(0, TESTS_DIR)

import run  # noqa: E402  (the same selection and options as run.py)

TEST_ID = re.compile(r"`(test_\w+\.\w+(?:\.\w+)?)`")
LESSON_DIR = re.compile(r"^(\d\d)-[\w.-]+$")
SELF_CHECK_CLASS = re.compile(r"^Wrong\w*Tests$")

# What happened, as JUnit failure types; the words come from describe().
KINDS = ("did-not-build", "not-found", "refused-to-start", "killed", "exited", "stopped",
         "never-answered", "wrong-bytes", "closed-connection", "did-not-exit", "sanitizer",
         "wrong-result", "harness-error")


# ---- claims ---------------------------------------------------------------------------------

def guide_claims():
    """Maps a test id to the claim of the guide row that names that very test. Rows that name
    a whole class ("HostileClientTests (five tests)") sum up several tests and are left out:
    their words ("do not end the server") are not what each of those tests checks."""
    claims = {}
    for guide in sorted(glob.glob(os.path.join(LAB_DIR, "lessons", "*", "README.md"))):
        with open(guide, encoding="utf-8") as text:
            for line in text:
                cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
                if len(cells) < 2 or not line.lstrip().startswith("|"):
                    continue
                for test_id in TEST_ID.findall(" ".join(cells[1:])):
                    if test_id.count(".") == 2:
                        claims.setdefault(test_id, re.sub(r"[`*]", "", cells[0]))
    return claims


def claim_for(test_id, claims, doc=None):
    """The guide's words for this test, else its docstring's first line, else its name in
    words - never the summary of its class."""
    if test_id in claims:
        return claims[test_id]
    return doc or test_id.rsplit(".", 1)[-1].replace("test_", "", 1).replace("_", " ")


# ---- which tests are the student's --------------------------------------------------------------

def is_self_check(test, label):
    """True for a test of the lab itself: not a lesson's, or one that runs the lab's own wrong
    programs (MutationChecks, Wrong...Tests), or anything that does not start the programs
    under test (not a LabTestCase)."""
    import labtest
    if not label.startswith("lesson"):
        return True
    if isinstance(test, labtest.MutationChecks) or SELF_CHECK_CLASS.match(type(test).__name__):
        return True
    return not isinstance(test, labtest.LabTestCase)


# ---- what happened --------------------------------------------------------------------------

DEATH = re.compile(r"^server (killed by (\S+)|exited with status (-?\d+)) during the test")


def shorten(text, limit=60):
    return text if len(text) <= limit else text[:limit] + "...(%d more)" % (len(text) - limit)


def shorten_bytes(match_text):
    """b'...' shown at most 60 characters long."""
    return shorten(match_text.strip())


def describe(row):
    """(kind, words) for a failed test: what the program did, in a sentence."""
    message = row.get("message", "")
    last = message.strip().splitlines()[-1] if message.strip() else ""
    deaths = [DEATH.match(line) for line in row.get("deaths", [])]
    deaths = [match for match in deaths if match]
    if row.get("kind") == "did-not-build":
        return "did-not-build", "did not build: the compiler's message follows"
    if row.get("stopped"):
        return "stopped", ("did not finish within the grading limit of %d s; the grader stopped "
                           "the test (the server never answered what it waited for)"
                           % row["budget"])
    if "no server for lesson" in message or "no client for lesson" in message:
        return "not-found", "no program: %s" % message.splitlines()[0].split(";")[0]
    if re.search(r"expected a line of the server's stdout matching '\^listening on", message):
        how = "it ended" if "but it closed" in message else "it ran on"
        return "refused-to-start", ("refused to start: %s without printing \"listening on "
                                    "ADDRESS:PORT\"" % how)
    if deaths:
        match = deaths[0]
        if match.group(2):
            return "killed", "server killed by %s during the test" % match.group(2)
        return "exited", "server exited with status %s during the test" % match.group(3)
    if "sanitizer report" in message:
        return "sanitizer", "a sanitizer reported an error in the program's stderr"
    still = " (the server was still running)" if row.get("servers") else ""
    wrong = re.search(r"expected line (b'.*'|b\".*\"), got (b'.*'|b\".*\")", message)
    if wrong:
        return "wrong-bytes", "answered the wrong bytes: expected %s, got %s" % (
            shorten_bytes(wrong.group(1)), shorten_bytes(wrong.group(2)))
    for pattern, words in ((r"expected nothing more, got (.*)", "sent bytes beyond the answer: %s"),
                           (r"expected no reply yet, got (.*)", "answered too early: %s"),
                           (r"expected end of stream, got (.*)", "sent %s instead of closing")):
        found = re.search(pattern, message)
        if found:
            return "wrong-bytes", words % shorten_bytes(found.group(1))
    waited = re.search(r"expected a line within ([\d.]+)s, got only (b'.*'|b\".*\")", message)
    if waited:
        got = waited.group(2)
        return "never-answered", "never answered within %ss%s%s" % (
            waited.group(1), "" if got in ("b''", 'b""') else
            " (only part of a line came: %s)" % shorten_bytes(got), still)
    closed = re.search(r"expected the server to close within ([\d.]+)s", message)
    if closed:
        return "never-answered", "did not close the connection within %ss%s" % (
            closed.group(1), still)
    printed = re.search(r"expected a line of (.*) matching (.*), but ([\d.]+)s passed", message)
    if printed:
        return "never-answered", "did not print a line matching %s on %s within %ss%s" % (
            shorten(printed.group(2)), printed.group(1), printed.group(3), still)
    partial = re.search(r"(\d+) bytes expected, (\d+) received", message)
    if partial:
        return "never-answered", "answered only %s of %s bytes; the rest never came%s" % (
            partial.group(2), partial.group(1), still)
    if re.search(r"^(socket\.timeout|TimeoutError)\b", last) or last.endswith("timed out"):
        return "never-answered", ("never answered: a send or receive timed out (the program "
                                  "stopped reading or answering)%s" % still)
    if "but the server closed the connection" in message:
        return "closed-connection", "closed the connection instead of answering%s" % still
    if re.match(r"(ConnectionResetError|ConnectionAbortedError|BrokenPipeError)", last):
        return "closed-connection", "reset the connection (%s)%s" % (last.split(":")[0], still)
    if re.match(r"ConnectionRefusedError", last):
        return "closed-connection", "refused a new connection (nothing listens any more?)%s" % still
    if "did not exit within" in message or "closed its input early" in message:
        return "did-not-exit", "did not exit when it should have, or stopped reading its input"
    if row["outcome"] == "error":
        return "harness-error", "the test met an unexpected error: %s" % shorten(last, 100)
    return "wrong-result", "a check failed: %s" % shorten(first_lines(message, 1)[0], 160)


# ---- running one test (in a worker process) ------------------------------------------------------

class ScorecardResult(unittest.TestResult):
    """Collects, per test: outcome, the failure's message and the programs that died."""

    def __init__(self, labels):
        super().__init__()
        self.labels = labels
        self.outcomes = []  # (label, test id, outcome, detail lines, seconds)
        self.rows = []  # the same as dicts, with what describe() and the JUnit XML need
        self._started = {}
        self._problem = {}

    def startTest(self, test):
        super().startTest(test)
        self._started[test.id()] = time.monotonic()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._problem.setdefault(test.id(), ("failed", str(err[1])))

    def addError(self, test, err):
        super().addError(test, err)
        self._problem.setdefault(test.id(), ("error", "%s: %s" % (err[0].__name__, err[1])))

    def addSubTest(self, test, subtest, err):
        # unittest reports a failing subTest only here, never through addFailure: without
        # this a test whose subtests all failed would be scored "passed".
        super().addSubTest(test, subtest, err)
        if err is not None and test.id() not in self._problem:
            failed = issubclass(err[0], test.failureException)
            self._problem[test.id()] = ("failed" if failed else "error",
                                        "%s\n%s" % (subtest, err[1]))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._problem[test.id()] = ("skipped", reason)

    def stopTest(self, test):
        super().stopTest(test)
        outcome, message = self._problem.pop(test.id(), ("passed", ""))
        detail = first_lines(message, 6)
        deaths = program_deaths(test)
        detail.extend(deaths)
        seconds = time.monotonic() - self._started.pop(test.id(), time.monotonic())
        label = self.labels.get(test.id(), "harness")
        self.outcomes.append((label, test.id(), outcome, detail, seconds))
        programs = getattr(test, "_programs", [])
        self.rows.append({
            "label": label, "id": test.id(), "outcome": outcome, "message": message,
            "deaths": deaths, "seconds": seconds, "doc": test.shortDescription(),
            "servers": sum(type(program).__name__ == "Server" for program in programs),
            "stderr": [(" ".join(os.path.basename(word) for word in program.argv[-3:]),
                        list(program.stderr.lines)[-15:]) for program in programs
                       if program.stderr.lines]})


def program_deaths(test):
    """How the test's servers that ended by themselves ended. labtest's cleanup says so for
    those gone by then (program_deaths); a server whose exit closed its sockets (the reset
    the test saw) may not have been reaped yet at that moment, but its status is known once
    the cleanup killed it: anything but SIGKILL came before that."""
    import labtest
    deaths = list(getattr(test, "program_deaths", []))
    for program in getattr(test, "_programs", []):
        status = program.process.returncode
        if (isinstance(program, labtest.Server) and status is not None
                and status != -getattr(signal, "SIGKILL", 9)):
            death = labtest.death_of(program)
            if death not in deaths:
                deaths.append(death)
    return deaths


def first_lines(text, count):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[:count]


def run_one(task, labels, suite=None):
    """Runs one test id (or suite) with the environment task["env"], under a watchdog: after
    task["budget"] seconds it kills the test's programs, so that the test's waits end."""
    import io
    import labtest
    os.environ.update(task.get("env", {}))
    for name in task.get("unset", []):
        os.environ.pop(name, None)
    if suite is None:
        suite = unittest.TestLoader().loadTestsFromName(task["id"])
    tests = list(run.iterate(suite))
    stopped = threading.Event()
    running = []

    def watchdog():
        stopped.set()
        for test in running:
            for program in list(getattr(test, "_programs", [])):
                try:
                    program.process.kill()
                except OSError:
                    pass
    lesson = getattr(tests[0], "LESSON", None) if tests else None
    mark = os.path.join(os.environ.get("LAB_GRADE_STATE", ""), "%s.expired" % lesson)
    done = threading.Event()
    started = time.monotonic()

    def watch():  # the budget, or the shorter one once a wait of the lesson has expired
        while not done.wait(0.25):
            elapsed = time.monotonic() - started
            short = task.get("budget_after") and os.environ.get("LAB_GRADE_STATE") \
                and os.path.exists(mark)
            limit = task["budget_after"] if short else task["budget"]
            if elapsed > limit:  # and any program the test starts after that, too
                task.setdefault("stopped_after", limit)
                watchdog()
    timer = threading.Thread(target=watch, daemon=True)
    timer.cancel = done.set
    running.extend(tests)
    result = ScorecardResult(labels)
    captured = io.StringIO()
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = captured
    timer.start()
    try:
        suite.run(result)
    finally:
        timer.cancel()
        sys.stdout, sys.stderr = real_out, real_err
    rows = result.rows
    for row in rows:
        row["output"] = captured.getvalue()
        if stopped.is_set() and row["outcome"] in ("failed", "error"):
            row["stopped"] = True
            row["budget"] = task.get("stopped_after", task["budget"])
            row["deaths"] = [death for death in row["deaths"] if "SIGKILL" not in death]
        if row["outcome"] in ("failed", "error"):
            kind, _ = describe(row)
            if kind in ("never-answered", "stopped", "did-not-exit"):  # next waits: short
                labtest._grading_lesson = tests[0].LESSON if hasattr(tests[0], "LESSON") else None
                labtest.note_expired_wait()
    return rows


def worker_main():
    """--worker: reads tasks (JSON lines) on stdin, answers each with a JSON line on the
    descriptor its parent gave; the tests' own output goes to the log file instead."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log = os.open(os.environ["LAB_GRADE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(log, 1)
    os.dup2(log, 2)
    labels = {}
    for line in sys.stdin:
        task = json.loads(line)
        labels.update(task.get("labels", {}))
        try:
            rows = run_one(task, labels)
        except BaseException:
            rows = [{"label": labels.get(task["id"], "harness"), "id": task["id"],
                     "outcome": "error", "message": traceback.format_exc(), "deaths": [],
                     "seconds": 0.0, "servers": 0, "stderr": [], "output": ""}]
        answers.write(json.dumps(rows) + "\n")
        answers.flush()
    return 0


class Pool:
    """jobs worker processes (python3 grade.py --worker), each in its own process group so
    that a test that outlives every limit is ended with all it started."""

    def __init__(self, jobs, log_path):
        self.log_path = log_path
        self.workers = [self._start() for _ in range(jobs)]

    def _start(self):
        env = dict(os.environ, LAB_GRADE_LOG=self.log_path, PYTHONUNBUFFERED="1")
        process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                   start_new_session=True, text=True)
        return {"process": process, "task": None, "since": 0.0}

    def stop(self, worker):
        try:
            os.killpg(worker["process"].pid, signal.SIGKILL)
        except OSError:
            pass
        worker["process"].wait()

    def run(self, tasks, hard_limit, on_rows):
        pending = list(tasks)
        selector = selectors.DefaultSelector()
        try:
            for worker in self.workers:
                selector.register(worker["process"].stdout, selectors.EVENT_READ, worker)
            while pending or any(worker["task"] for worker in self.workers):
                for worker in self.workers:
                    if worker["task"] is None and pending:
                        worker["task"] = pending.pop(0)
                        worker["since"] = time.monotonic()
                        worker["process"].stdin.write(json.dumps(worker["task"]) + "\n")
                        worker["process"].stdin.flush()
                for key, _ in selector.select(timeout=1.0):
                    worker = key.data
                    line = worker["process"].stdout.readline()
                    task, worker["task"] = worker["task"], None
                    if line:
                        on_rows(task, json.loads(line))
                    else:  # it died: say so, and start another in its place
                        on_rows(task, [self._lost(task, "the test process ended unexpectedly")])
                        self._replace(selector, worker)
                now = time.monotonic()
                for worker in self.workers:
                    task = worker["task"]
                    if task and now - worker["since"] > task["budget"] + hard_limit:
                        worker["task"] = None
                        on_rows(task, [self._lost(task, "the test did not end %d s after its "
                                                  "programs were stopped" % hard_limit,
                                                  stopped=True)])
                        self._replace(selector, worker)
        finally:
            for worker in self.workers:
                worker["process"].stdin.close()
                self.stop(worker)

    def _replace(self, selector, worker):
        selector.unregister(worker["process"].stdout)
        self.stop(worker)
        worker.update(self._start())
        selector.register(worker["process"].stdout, selectors.EVENT_READ, worker)

    @staticmethod
    def _lost(task, why, stopped=False):
        return {"label": task["label"], "id": task["id"], "outcome": "error", "message": why,
                "deaths": [], "seconds": task["budget"], "servers": 1, "stderr": [],
                "output": "", "stopped": stopped, "budget": task["budget"]}


# ---- grading from source --------------------------------------------------------------------

def lab_compile_flags():
    """The flags CMakeLists.txt gives every lesson (GCC or Clang, not Windows): C11 without
    extensions, POSIX.1-2008, the lab's warnings as errors (test_harness checks they agree)."""
    import variants
    return (["-std=c11", "-D_POSIX_C_SOURCE=200809L"] + variants.WARNINGS + ["-Werror"])


def lesson_libraries(source):
    """Libraries a program needs beyond common/: liburing for one that includes liburing.h
    (lesson 17's server), as pkg-config names them."""
    with open(source, encoding="utf-8", errors="replace") as text:
        if "liburing.h" not in text.read():
            return []
    try:
        found = subprocess.run(["pkg-config", "--libs", "liburing"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True).stdout
    except FileNotFoundError:
        found = ""
    return shlex.split(found) or ["-luring"]


def build_program(source, output, cflags):
    """Compiles one student's program with common/*.c; returns None or the compiler's message."""
    compiler = shlex.split(os.environ.get("CC", "cc"))
    command = (compiler + lab_compile_flags() + shlex.split(cflags)
               + ["-I", os.path.join(LAB_DIR, "common"), "-o", output, source]
               + sorted(glob.glob(os.path.join(LAB_DIR, "common", "*.c"))) + ["-pthread"]
               + lesson_libraries(source))
    try:
        finished = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=300)
    except FileNotFoundError:
        return "no C compiler: %s (set CC)" % compiler[0]
    if finished.returncode != 0:
        return finished.stdout.decode("utf-8", "replace")
    return None


def lesson_slugs():
    return {name[:2]: name for name in os.listdir(os.path.join(LAB_DIR, "lessons"))
            if LESSON_DIR.match(name)}


def build_sources(source_dir, wanted, out_dir, cflags):
    """Builds the student's server.c and client.c. source_dir holds them for the one lesson
    named in wanted, or NN-slug/ directories (like lessons/) for every lesson found. Returns
    ({label: environment for its tests}, {label: [(program, compiler message)]}, notes)."""
    slugs = lesson_slugs()
    lessons = {}
    if any(os.path.isfile(os.path.join(source_dir, role + ".c")) for role in ("server", "client")):
        named = sorted({label if label.startswith("lesson") else "lesson" + label[11:13]
                        for label in wanted if re.match(r"^(lesson\d\d|test_lesson\d\d\b)", label)})
        if len(named) != 1:
            raise SystemExit("grade.py: %s holds server.c/client.c of one lesson: name it, "
                             "e.g. grade.py lesson08 --source %s" % (source_dir, source_dir))
        lessons[named[0]] = source_dir
    else:
        for name in sorted(os.listdir(source_dir)):
            match = LESSON_DIR.match(name)
            if match and os.path.isdir(os.path.join(source_dir, name)):
                lessons["lesson" + match.group(1)] = os.path.join(source_dir, name)
    if not lessons:
        raise SystemExit("grade.py: no server.c, client.c or NN-slug/ directory in %s"
                         % source_dir)
    environments, failures, notes = {}, {}, {}
    for label, directory in sorted(lessons.items()):
        slug = slugs.get(label[-2:])
        if slug is None:
            raise SystemExit("grade.py: the lab has no lesson %s" % label[-2:])
        env, unset = {}, []
        for role in ("server", "client"):
            source = os.path.join(directory, role + ".c")
            if not os.path.isfile(source):
                notes.setdefault(label, []).append("no %s.c: the lab's own %s is used"
                                                   % (role, role))
                unset.append("LAB_" + role.upper())
                continue
            output = os.path.join(out_dir, slug, role)
            os.makedirs(os.path.dirname(output), exist_ok=True)
            message = build_program(source, output, cflags)
            if message is not None:
                failures.setdefault(label, []).append((role + ".c", message))
            else:
                env["LAB_" + role.upper()] = output
        environments[label] = (env, unset)
    return environments, failures, notes


# ---- the scorecard --------------------------------------------------------------------------

def summary_counts(rows):
    ran = [row for row in rows if row["outcome"] != "skipped"]
    passed = [row for row in ran if row["outcome"] == "passed"]
    return len(passed), len(ran), len(rows) - len(ran)


def print_scorecard(rows, self_checks, claims, build_failures, notes, out=sys.stdout):
    labels = sorted({row["label"] for row in rows} | set(self_checks) | set(build_failures))
    for label in labels:
        mine = [row for row in rows if row["label"] == label]
        passed, ran, skipped = summary_counts(mine)
        extras = []
        if skipped:
            extras.append("%d skipped" % skipped)
        if self_checks.get(label):
            extras.append(self_check_words(self_checks[label]))
        if label in build_failures:
            print("%-9s did not build: %s" % (label, ", ".join(name for name, _ in
                                                               build_failures[label])), file=out)
            for name, message in build_failures[label]:
                print("  FAIL  %s compiles with the lab's flags" % name, file=out)
                print("        did not build: the compiler said", file=out)
                for line in first_lines(message, 12):
                    print("        %s" % line, file=out)
            continue
        print("%-9s %3d/%-3d passed%s" % (label, passed, ran,
                                          " (%s)" % ", ".join(extras) if extras else ""), file=out)
        for note in notes.get(label, []):
            print("        note: %s" % note, file=out)
        for row in mine:
            if row["outcome"] not in ("failed", "error"):
                continue
            kind, words = describe(row)
            print("  FAIL  %s" % claim_for(row["id"], claims, row.get("doc")), file=out)
            print("        test: %s" % row["id"], file=out)
            print("        %s" % words, file=out)
            for line in failure_detail(row, kind, words):
                print("        %s" % line, file=out)
    passed, ran, skipped = summary_counts(rows)
    extras = []
    if build_failures:
        extras.append("%d lesson%s did not build" % (len(build_failures),
                                                     "" if len(build_failures) == 1 else "s"))
    if self_checks:
        extras.append(self_check_words(sum(self_checks.values())))
    print("%d passed, %d failed, %d skipped: %d tests of the student's programs%s"
          % (passed, ran - passed, skipped, len(rows),
             "".join("; " + extra for extra in extras)), file=out)


def message_lines(message):
    """The lines of a failure's message, each traceback in it replaced by its last line."""
    lines, in_traceback = [], False
    for line in message.strip().splitlines():
        if line.strip().startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and line.startswith((" ", "\t")) and not line.strip().startswith(
                ("AssertionError", "TimeoutError", "Connection", "BrokenPipeError", "OSError")):
            continue
        elif line.strip():
            in_traceback = False
            lines.append(line.strip() if in_traceback else line)
    return lines


def self_check_words(count):
    return "%d self-check%s of the lab not counted" % (count, "" if count == 1 else "s")


SAID_IN_WORDS = re.compile(r"^(expected line b|expected a line within|expected nothing more|"
                           r"expected no reply yet|expected end of stream|expected the server "
                           r"to close within|batch of \d+ bytes: )")


def failure_detail(row, kind, words=""):
    """The lines under a failure: the check's own message (shortened) where the words above
    did not already say it, and for a server that refused to start or died, the end of its
    stderr."""
    lines = []
    if kind == "refused-to-start":
        printed, _, stderr = row["message"].partition("\nstderr:\n")
        printed = [line.strip() for line in printed.splitlines()[1:] if line.strip()]
        return (["stdout: %s" % shorten(line, 140) for line in printed[-2:]]
                + ["stderr: %s" % shorten(line.strip(), 140)
                   for line in stderr.strip().splitlines()[-3:]])
    for line in message_lines(row["message"])[:4]:
        if line.strip() == "stderr:" or SAID_IN_WORDS.match(line) or line.strip() in words:
            continue
        lines.append(shorten(line, 150))
    if kind in ("refused-to-start", "killed", "exited", "sanitizer"):
        for name, tail in row.get("stderr", [])[:1]:
            lines.extend("stderr: %s" % shorten(line, 140) for line in tail[-3:])
    return lines[:5]


def write_junit(path, rows, self_check_rows, claims, build_failures):
    """One <testsuite> per lesson, one <testcase> per test; a failure's type is what happened
    (never-answered, killed, ...), its text the check's message, and <system-err> the end of
    the programs' stderr. The lab's self-checks are <skipped> with the reason."""
    root = ElementTree.Element("testsuites", name="TCP Socket Lab")
    labels = sorted({row["label"] for row in rows} | {row["label"] for row in self_check_rows}
                    | set(build_failures))
    for label in labels:
        mine = [row for row in rows if row["label"] == label]
        theirs = [row for row in self_check_rows if row["label"] == label]
        builds = build_failures.get(label, [])
        failed = sum(row["outcome"] in ("failed", "error") for row in mine) + len(builds)
        suite = ElementTree.SubElement(
            root, "testsuite", name=label, tests=str(len(mine) + len(theirs) + len(builds)),
            failures=str(failed), errors="0",
            skipped=str(sum(row["outcome"] == "skipped" for row in mine) + len(theirs)),
            time="%.3f" % sum(row["seconds"] for row in mine))
        for name, message in builds:
            case = ElementTree.SubElement(suite, "testcase", classname="%s.build" % label,
                                          name=name, time="0")
            element = ElementTree.SubElement(case, "failure", type="did-not-build",
                                             message="%s did not build with the lab's flags" % name)
            element.text = message
        for row in mine:
            class_name, name = row["id"].rsplit(".", 1)
            case = ElementTree.SubElement(suite, "testcase", classname=class_name, name=name,
                                          time="%.3f" % row["seconds"])
            if row["outcome"] in ("failed", "error"):
                kind, words = describe(row)
                element = ElementTree.SubElement(
                    case, "failure", type=kind,
                    message="%s: %s" % (claim_for(row["id"], claims, row.get("doc")), words))
                element.text = row["message"]
                err = "\n".join("--- stderr of %s (last lines)\n%s" % (name, "\n".join(tail))
                                for name, tail in row.get("stderr", []))
                if err:
                    ElementTree.SubElement(case, "system-err").text = err
            elif row["outcome"] == "skipped":
                ElementTree.SubElement(case, "skipped", message=row["message"])
            if row.get("output", "").strip():
                ElementTree.SubElement(case, "system-out").text = row["output"]
        for row in theirs:
            class_name, name = row["id"].rsplit(".", 1)
            case = ElementTree.SubElement(suite, "testcase", classname=class_name, name=name,
                                          time="0")
            ElementTree.SubElement(case, "skipped", message="a self-check of the lab (it runs "
                                   "the lab's own wrong programs), not a test of the student's")
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


# ---- main -----------------------------------------------------------------------------------

def parse_options(argv):
    parser = argparse.ArgumentParser(
        description="Grade a student's programs against the lab's tests: a scorecard per "
                    "lesson, each failure with the claim it breaks and what happened.",
        epilog="Examples: grade.py lesson08 --source DIR (DIR/server.c, DIR/client.c); "
               "grade.py --source TREE (TREE/NN-slug/server.c ...); grade.py --bin-dir DIR. "
               "See docs/instructors.md.")
    parser.add_argument("selection", nargs="*",
                        help="lessons (lesson08) or test ids to grade; with --bin-dir or a "
                             "--source tree, nothing means every lesson found there")
    where = parser.add_argument_group(
        "the student's programs", "--source, or the options run.py takes too")
    where.add_argument("--source", metavar="DIR",
                       help="the student's C source: DIR/server.c and DIR/client.c of the one "
                            "lesson named (grade.py lesson08 --source DIR), or DIR/NN-slug/ "
                            "directories, one per lesson; built here with the lab's flags "
                            "against common/ (a missing file: the lab's own program is used)")
    where.add_argument("--bin-dir", metavar="DIR",
                       help="built programs: DIR/NN-slug/server and client, or DIR/server")
    where.add_argument("--server", metavar="PATH",
                       help="the server of the one lesson named (the lab's client is used)")
    where.add_argument("--client", metavar="PATH",
                       help="the client of the one lesson named (the lab's server is used)")
    where.add_argument("--build-dir", metavar="DIR",
                       help="a whole build tree: DIR/lessons/NN-slug/server (default: build/)")
    how = parser.add_argument_group("how")
    how.add_argument("--emulator", metavar="CMD",
                     help="put CMD before each program, e.g. wine for .exe files")
    how.add_argument("--sanitizer", choices=("address", "thread"),
                     help="the programs were built with this sanitizer (deadlines doubled)")
    how.add_argument("--cflags", default="", metavar="FLAGS",
                     help="with --source: more compiler flags, e.g. "
                          "\"-fsanitize=address,undefined -g\"")
    how.add_argument("--jobs", "-j", type=int, default=min(6, 3 * (os.cpu_count() or 1)),
                     help="tests run at once (default: 3 per core, at most 6, as the ctest "
                          "presets run them: most of a test's time is waiting)")
    how.add_argument("--wait", type=float, default=5.0, metavar="SECONDS",
                     help="grading mode: the longest a test waits for one answer or line "
                          "(default 5)")
    how.add_argument("--wait-after", type=float, default=1.0, metavar="SECONDS",
                     help="grading mode: the longest a test waits for a server's answer once "
                          "a wait of the lesson has expired (default 1; the lab's tests never "
                          "ask a server for an answer later than 200 ms)")
    how.add_argument("--budget", type=float, default=30.0, metavar="SECONDS",
                     help="grading mode: a test still running after this long has its "
                          "programs stopped and fails as 'stopped' (default 30; the longest "
                          "test takes 6 s against the lab's programs)")
    how.add_argument("--budget-after", type=float, default=15.0, metavar="SECONDS",
                     help="grading mode: the same, for a test of a lesson in which a wait "
                          "has already expired (default 15)")
    how.add_argument("--full-waits", action="store_true",
                     help="no grading mode: the tests' own deadlines (10 s and more), as "
                          "ctest runs them; much slower against a broken program")
    out = parser.add_argument_group("output")
    out.add_argument("--junit", metavar="FILE",
                     help="also write JUnit XML: a testsuite per lesson, failures typed by "
                          "what happened, the programs' stderr in system-err")
    out.add_argument("--log", metavar="FILE",
                     help="where the tests' own output (measurements) goes (default: a "
                          "temporary file, named at the end when anything was written)")
    out.add_argument("--self-checks", action="store_true",
                     help="list the lab's self-checks that were left out, by name")
    parser.add_argument("--worker", action="store_true",
                        help="internal: run the tests sent on stdin (grade.py starts these)")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_options(sys.argv[1:] if argv is None else argv)
    if options.worker:
        return worker_main()
    started = time.monotonic()
    wanted = set(options.selection)
    given = [name for name in ("source", "bin_dir", "server", "client")
             if getattr(options, name)]
    if options.source and len(given) > 1:
        print("grade.py: --source replaces --bin-dir, --server and --client", file=sys.stderr)
        return 2
    run.set_environment(options)
    from labtest import scaled  # after the environment: a sanitizer or emulator stretches it
    scratch = tempfile.mkdtemp(prefix="grade-")
    environments, build_failures, notes = {}, {}, {}
    if options.source:
        environments, build_failures, notes = build_sources(
            os.path.abspath(options.source), wanted, os.path.join(scratch, "bin"),
            options.cflags)
        if not any(re.match(r"^(lesson\d\d|test_lesson\d\d\b)", label) for label in wanted):
            wanted |= set(environments)
    if not wanted and options.bin_dir:  # a student's tree: the lessons found in it
        wanted = {"lesson" + name[:2] for name in os.listdir(options.bin_dir)
                  if LESSON_DIR.match(name)}
    tests = list(run.all_tests())
    labels = dict(tests)
    ids = [test_id for test_id, label in tests if run.selected(test_id, label, wanted)]
    if not ids:
        print("grade.py: no test matches %s" % " ".join(options.selection), file=sys.stderr)
        return 2
    suite = unittest.TestLoader().loadTestsFromNames(ids)
    by_id = {test.id(): test for test in run.iterate(suite)}
    mine = [test_id for test_id in ids if not is_self_check(by_id[test_id], labels[test_id])]
    theirs = [test_id for test_id in ids if test_id not in mine]
    if options.source:
        mine = [test_id for test_id in mine if labels[test_id] in environments
                and labels[test_id] not in build_failures]
    self_checks = {}
    for test_id in theirs:
        self_checks[labels[test_id]] = self_checks.get(labels[test_id], 0) + 1
    if not mine and not build_failures:
        print("grade.py: %d tests match, all of them self-checks of the lab; nothing tests "
              "the student's programs" % len(theirs), file=sys.stderr)
        return 2
    log_path = os.path.abspath(options.log) if options.log else os.path.join(scratch, "tests.log")
    open(log_path, "w").close()
    state = os.path.join(scratch, "state")
    os.makedirs(state)
    if not options.full_waits:
        os.environ["LAB_GRADE_WAIT"] = "%g" % options.wait
        os.environ["LAB_GRADE_WAIT_AFTER"] = "%g" % options.wait_after
        os.environ["LAB_GRADE_STATE"] = state
    tasks = []
    for test_id in mine:
        env, unset = environments.get(labels[test_id], ({}, []))
        tasks.append({"id": test_id, "label": labels[test_id], "env": env, "unset": unset,
                      "labels": {test_id: labels[test_id]},
                      "budget": 100000.0 if options.full_waits else scaled(options.budget),
                      "budget_after": None if options.full_waits
                      else scaled(options.budget_after)})
    rows = {}

    def on_rows(task, found):
        for row in found:
            rows[row["id"]] = row
    pool = Pool(max(1, options.jobs), log_path)
    try:
        pool.run(tasks, 20.0, on_rows)
    except KeyboardInterrupt:
        print("grade.py: interrupted", file=sys.stderr)
        return 130
    ordered = [rows[test_id] for test_id in mine if test_id in rows]
    with open(log_path, "a", encoding="utf-8") as log:
        for row in ordered:
            log.write("--- %s: %s in %.1f s\n" % (row["id"], row["outcome"], row["seconds"]))
            if row.get("output", "").strip():
                log.write("%s\n" % row["output"].rstrip())
    claims = guide_claims()
    print_scorecard(ordered, self_checks, claims, build_failures, notes)
    if options.self_checks and theirs:
        print("self-checks of the lab, not run:")
        for test_id in theirs:
            print("  %s" % test_id)
    if options.junit:
        write_junit(options.junit, ordered,
                    [{"label": labels[test_id], "id": test_id} for test_id in theirs],
                    claims, build_failures)
    sys.stdout.flush()
    logged = any(row.get("output", "").strip() for row in ordered)
    print("graded in %.0f s%s" % (time.monotonic() - started,
                                  "; the tests' own output: %s" % log_path if logged else ""),
          file=sys.stderr)
    if not options.log and not logged:
        shutil.rmtree(scratch, ignore_errors=True)
    failed = build_failures or any(row["outcome"] in ("failed", "error") for row in ordered)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
