#!/usr/bin/env python3
"""run.py - runs the lab's tests, all or some, without CTest (CTest calls it too).

  python3 tests/run.py                          every test
  python3 tests/run.py lesson02                 one lesson's tests
  python3 tests/run.py test_lesson02               one test module (imports only that one)
  python3 tests/run.py test_lesson02.FramingTests.test_bytes_are_not_c_strings_a_zero_byte_is_echoed
  python3 tests/run.py lesson02 --server ~/student/server --client ~/student/client
  python3 tests/run.py --bin-dir ~/student/build/lessons
  python3 tests/run.py --list                   test ids and their labels (for CMake)

Options set the variables labtest.py reads (see docs/instructors.md).
"""
import argparse
import os
import sys
import unittest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
SKIPPED = 77  # exit status when every test run was skipped; tests/CMakeLists.txt tells CTest
sys.path.insert(0, TESTS_DIR)


def lesson_label(module):
    """'lesson02' for a module whose tests have LESSON = '02-...', else the module's LABEL."""
    label = getattr(module, "LABEL", None)
    if label:
        return label
    for value in vars(module).values():
        lesson = getattr(value, "LESSON", None)
        if isinstance(value, type) and lesson:
            return "lesson" + lesson[:2]
    return "harness"


def all_tests():
    """Yields (test id, label) for every test in tests/test_*.py, in file order."""
    loader = unittest.TestLoader()
    for name in sorted(os.listdir(TESTS_DIR)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        module = __import__(name[:-3])
        label = lesson_label(module)
        suite = loader.loadTestsFromModule(module)
        for test in iterate(suite):
            yield test.id(), label


def iterate(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iterate(item)
        else:
            yield item


def main():
    parser = argparse.ArgumentParser(description="Run the TCP Socket Lab tests.")
    parser.add_argument("selection", nargs="*",
                        help="labels (lesson02) or test ids; nothing means all")
    parser.add_argument("--list", action="store_true", help="print 'id label' lines")
    parser.add_argument("--build-dir", help="build tree with lessons/NN-slug/ programs")
    parser.add_argument("--bin-dir", help="directory of a student's binaries")
    parser.add_argument("--server", help="path of the server under test")
    parser.add_argument("--client", help="path of the client under test")
    parser.add_argument("--emulator", help="command put before each program, e.g. wine")
    parser.add_argument("--sanitizer", help="address or thread, as the build used")
    options = parser.parse_args()
    set_environment(options)

    wanted = set(options.selection)
    if wanted and not options.list and all(w.startswith("test_") for w in wanted):
        # Test ids or module names: load just those, without importing the other modules.
        return run_tests(sorted(wanted))
    tests = list(all_tests())
    if options.list:
        for test_id, label in tests:
            print(test_id, label)
        return 0
    ids = [test_id for test_id, label in tests if selected(test_id, label, wanted)]
    if not ids:
        print("run.py: no test matches %s" % " ".join(options.selection), file=sys.stderr)
        return 2
    return run_tests(ids)


def set_environment(options):
    """Turns the options that point at programs into the variables labtest.py reads."""
    for option, variable in (("build_dir", "LAB_BUILD_DIR"), ("bin_dir", "LAB_BIN_DIR"),
                             ("server", "LAB_SERVER"), ("client", "LAB_CLIENT"),
                             ("emulator", "LAB_EMULATOR"), ("sanitizer", "LAB_SANITIZER")):
        value = getattr(options, option)
        if value is not None:
            os.environ[variable] = os.path.abspath(value) if option in (
                "build_dir", "bin_dir", "server", "client") else value


def selected(test_id, label, wanted):
    """True when a test belongs to the selection: everything, a label, a module, a class."""
    return (not wanted or label in wanted or test_id in wanted
            or any(test_id.startswith(w + ".") for w in wanted))


def run_tests(ids):
    suite = unittest.TestLoader().loadTestsFromNames(ids)
    missing = [test.id() for test in iterate(suite) if type(test).__name__ == "_FailedTest"]
    if missing:  # the loader stands in a failing placeholder for a name it cannot find
        names = [test_id.rsplit(".", 1)[-1] for test_id in missing]
        print("run.py: no test matches %s" % " ".join(names), file=sys.stderr)
        return 2
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if result.testsRun == 0:
        return 2
    if not result.wasSuccessful():
        return 1
    if len(result.skipped) == result.testsRun:
        return SKIPPED  # CTest shows it as skipped, not passed (SKIP_RETURN_CODE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
