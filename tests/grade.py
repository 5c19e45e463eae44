#!/usr/bin/env python3
"""grade.py - the lab's tests as a scorecard: per lesson, passed/total, and for each failure
the claim of the guide it breaks, what was expected and what came, and how a program died.

  python3 tests/grade.py --bin-dir ~/student/build/lessons          every lesson found there
  python3 tests/grade.py lesson03 --server ~/student/server         one lesson, one program
  python3 tests/grade.py lesson05 lesson08 --junit grades.xml       also JUnit XML

It takes the same ways of pointing at programs as run.py (--build-dir, --bin-dir, --server,
--client, --emulator, --sanitizer; see docs/instructors.md). The claims come from the
"How we know" tables of the lesson guides (lessons/NN-slug/README.md). Exit status: 0 when
every test passed or was skipped, 1 when any failed. Standard library only.
"""
import argparse
import glob
import os
import re
import sys
import time
import unittest
import xml.etree.ElementTree as ElementTree

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
LAB_DIR = os.path.dirname(TESTS_DIR)
sys.path.insert(0, TESTS_DIR)

import run  # noqa: E402  (the same selection and options as run.py)

TEST_ID = re.compile(r"`(test_\w+\.\w+(?:\.\w+)?)`")


def guide_claims():
    """Maps a test id (or a class id, for a whole class) to the claim its guide states."""
    claims = {}
    for guide in sorted(glob.glob(os.path.join(LAB_DIR, "lessons", "*", "README.md"))):
        with open(guide, encoding="utf-8") as text:
            for line in text:
                cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
                if len(cells) < 2 or not line.lstrip().startswith("|"):
                    continue
                for test_id in TEST_ID.findall(" ".join(cells[1:])):
                    claims.setdefault(test_id, re.sub(r"[`*]", "", cells[0]))
    return claims


def claim_for(test_id, claims, test):
    """The guide's words for a test, else its docstring, else its name in words."""
    for key in (test_id, test_id.rsplit(".", 1)[0]):
        if key in claims:
            return claims[key]
    doc = test.shortDescription()
    return doc or test_id.rsplit(".", 1)[-1].replace("test_", "", 1).replace("_", " ")


def first_lines(text, count):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[:count]


class ScorecardResult(unittest.TestResult):
    """Collects, per test: outcome, the failure's message and the programs that died."""

    def __init__(self, labels):
        super().__init__()
        self.labels = labels
        self.outcomes = []  # (label, test id, outcome, detail lines, seconds)
        self._started = {}
        self._problem = {}

    def startTest(self, test):
        super().startTest(test)
        self._started[test.id()] = time.monotonic()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._problem[test.id()] = ("failed", str(err[1]))

    def addError(self, test, err):
        super().addError(test, err)
        self._problem[test.id()] = ("error", "%s: %s" % (err[0].__name__, err[1]))

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
        for death in getattr(test, "program_deaths", []):  # set by labtest's cleanup
            detail.append(death)
        seconds = time.monotonic() - self._started.pop(test.id(), time.monotonic())
        self.outcomes.append((self.labels.get(test.id(), "harness"), test.id(), outcome,
                              detail, seconds))


def print_scorecard(outcomes, claims, tests_by_id, out=sys.stdout):
    by_label = {}
    for outcome in outcomes:
        by_label.setdefault(outcome[0], []).append(outcome)
    for label in sorted(by_label):
        rows = by_label[label]
        ran = [row for row in rows if row[2] != "skipped"]
        passed = [row for row in ran if row[2] == "passed"]
        skipped = len(rows) - len(ran)
        print("%-9s %3d/%-3d passed%s" % (label, len(passed), len(ran),
                                          ", %d skipped" % skipped if skipped else ""),
              file=out)
        for _, test_id, outcome, detail, _ in rows:
            if outcome in ("failed", "error"):
                print("  FAIL  %s" % claim_for(test_id, claims, tests_by_id[test_id]), file=out)
                print("        test: %s" % test_id, file=out)
                for line in detail:
                    print("        %s" % line, file=out)
    total = [row for row in outcomes if row[2] != "skipped"]
    failed = [row for row in total if row[2] != "passed"]
    print("%d passed, %d failed, %d skipped" % (len(total) - len(failed), len(failed),
                                                len(outcomes) - len(total)), file=out)


def write_junit(path, outcomes, claims, tests_by_id):
    """One <testsuite> per lesson, one <testcase> per test, as course systems read it."""
    root = ElementTree.Element("testsuites", name="TCP Socket Lab")
    by_label = {}
    for outcome in outcomes:
        by_label.setdefault(outcome[0], []).append(outcome)
    for label in sorted(by_label):
        rows = by_label[label]
        suite = ElementTree.SubElement(root, "testsuite", name=label, tests=str(len(rows)),
                                       failures=str(sum(r[2] == "failed" for r in rows)),
                                       errors=str(sum(r[2] == "error" for r in rows)),
                                       skipped=str(sum(r[2] == "skipped" for r in rows)))
        for _, test_id, outcome, detail, seconds in rows:
            class_name, name = test_id.rsplit(".", 1)
            case = ElementTree.SubElement(suite, "testcase", classname=class_name, name=name,
                                          time="%.3f" % seconds)
            if outcome in ("failed", "error"):
                element = ElementTree.SubElement(
                    case, "failure" if outcome == "failed" else "error",
                    message=claim_for(test_id, claims, tests_by_id[test_id]))
                element.text = "\n".join(detail)
            elif outcome == "skipped":
                ElementTree.SubElement(case, "skipped", message="\n".join(detail))
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def main():
    parser = argparse.ArgumentParser(description="Grade programs against the lab's tests.")
    parser.add_argument("selection", nargs="*", help="labels (lesson03) or test ids")
    for option in ("build-dir", "bin-dir", "server", "client", "emulator", "sanitizer"):
        parser.add_argument("--" + option)
    parser.add_argument("--junit", help="also write JUnit XML to this file")
    options = parser.parse_args()
    run.set_environment(options)
    tests = list(run.all_tests())
    labels = dict(tests)
    wanted = set(options.selection)
    if not wanted and options.bin_dir:  # a student's tree: the lessons found in it
        wanted = {"lesson" + name[:2] for name in os.listdir(options.bin_dir)
                  if re.match(r"^\d\d-", name)}
    ids = [test_id for test_id, label in tests if run.selected(test_id, label, wanted)]
    ids = [test_id for test_id in ids if labels[test_id] not in ("harness", "peers")
           or test_id in wanted or labels[test_id] in wanted]
    if not ids:
        print("grade.py: no test matches %s" % " ".join(options.selection), file=sys.stderr)
        return 2
    suite = unittest.TestLoader().loadTestsFromNames(ids)
    tests_by_id = {test.id(): test for test in run.iterate(suite)}
    result = ScorecardResult(labels)
    suite.run(result)
    claims = guide_claims()
    print_scorecard(result.outcomes, claims, tests_by_id)
    if options.junit:
        write_junit(options.junit, result.outcomes, claims, tests_by_id)
    return 0 if all(row[2] in ("passed", "skipped") for row in result.outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
