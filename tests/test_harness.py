"""The tests fail when the behaviour is wrong: each lesson's tests against wrong servers.

Runs natively only: each check starts a whole lesson's tests in a child process."""
import unittest

from labtest import MutationChecks, peer_path

LABEL = "harness"


class WrongServerTests(MutationChecks):

    def test_lesson02_fails_a_server_that_answers_only_the_first_recv(self):
        self.assert_suite_fails(
            ["test_lesson02.FramingTests"],
            ["test_one_byte_at_a_time_is_answered_once_the_line_is_whole",
             "test_many_lines_in_one_write_get_one_answer_each_in_order",
             "test_an_over_long_line_gets_the_documented_answer_and_service_goes_on"],
            server=peer_path("broken_first_recv_only.py"))

    def test_lesson02_fails_a_server_that_sends_its_whole_buffer(self):
        self.assert_suite_fails(
            ["test_lesson02.FramingTests"],
            ["test_no_bytes_beyond_the_line_are_sent",
             "test_many_lines_in_one_write_get_one_answer_each_in_order"],
            server=peer_path("broken_whole_buffer.py"))

    def test_lesson03_fails_a_server_that_never_answers_a_second_client(self):
        self.assert_suite_fails(
            ["test_lesson03.IterativeTests", "test_lesson03.HostileClientTests"],
            ["test_a_second_client_waits_until_the_first_leaves_then_is_served",
             "test_serves_many_clients_one_after_another",
             "test_reset_in_the_middle_of_a_line"],
            server=peer_path("broken_first_client_only.py"))


class ScorecardTests(MutationChecks):
    """grade.py names the broken claim in the guide's words and how the server died."""

    def test_the_scorecard_names_the_claim_and_the_signal_and_writes_junit(self):
        import os
        import subprocess
        import sys
        import tempfile
        import xml.etree.ElementTree as ElementTree
        from labtest import TESTS_DIR
        junit = os.path.join(tempfile.mkdtemp(), "grades.xml")
        finished = subprocess.run(
            [sys.executable, os.path.join(TESTS_DIR, "grade.py"),
             "test_lesson03.HostileClientTests", "--junit", junit,
             "--server", peer_path("broken_no_sigpipe_policy.py")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        card = finished.stdout.decode()
        self.assertEqual(finished.returncode, 1, card)
        self.assertRegex(card, r"(?m)^lesson03 +\d+/\d+ +passed")
        self.assertRegex(card, r"FAIL  .*\n +test: test_lesson03\.HostileClientTests\.test_")
        self.assertIn("server killed by SIGPIPE during the test", card)
        suites = ElementTree.parse(junit).getroot()
        cases = [case for suite in suites for case in suite]
        self.assertTrue(any(case.find("error") is not None or case.find("failure") is not None
                            for case in cases), "JUnit XML records the failure")


class ScorecardSubTestTests(unittest.TestCase):
    """A failing subTest fails its test on the scorecard (unittest reports it only through
    addSubTest, which a result class must handle itself)."""

    def test_a_failing_subtest_is_a_failure_and_a_passing_one_a_pass(self):
        import grade

        class Example(unittest.TestCase):
            def test_one_subtest_fails(self):
                for number in (1, 2, 3):
                    with self.subTest(number=number):
                        self.assertNotEqual(number, 2, "two is wrong")

            def test_every_subtest_passes(self):
                for number in (1, 2):
                    with self.subTest(number=number):
                        self.assertTrue(number)

        suite = unittest.TestLoader().loadTestsFromTestCase(Example)
        result = grade.ScorecardResult({})
        suite.run(result)
        outcomes = {test_id.rsplit(".", 1)[1]: (outcome, detail)
                    for _, test_id, outcome, detail, _ in result.outcomes}
        self.assertEqual(outcomes["test_every_subtest_passes"][0], "passed")
        outcome, detail = outcomes["test_one_subtest_fails"]
        self.assertEqual(outcome, "failed")
        self.assertIn("number=2", "\n".join(detail))
        self.assertIn("two is wrong", "\n".join(detail))


def grade_main(*arguments):
    """Runs tests/grade.py with arguments; returns (exit status, stdout, stderr, seconds)."""
    import os
    import subprocess
    import sys
    import time
    from labtest import TESTS_DIR
    started = time.monotonic()
    finished = subprocess.run([sys.executable, os.path.join(TESTS_DIR, "grade.py")]
                              + list(arguments), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=300)
    return (finished.returncode, finished.stdout.decode(), finished.stderr.decode(),
            time.monotonic() - started)


class GradeSelfCheckTests(MutationChecks):
    """The lab's self-checks (its own wrong programs) never count toward a student's score."""

    def test_self_checks_are_told_apart_and_not_run(self):
        import grade
        import test_lesson08
        self.assertTrue(grade.is_self_check(test_lesson08.WrongServerTests(
            "test_lesson05s_polling_loop_fails_the_idle_test"), "lesson08"))
        self.assertTrue(grade.is_self_check(ScorecardSubTestTests(
            "test_a_failing_subtest_is_a_failure_and_a_passing_one_a_pass"), "harness"))
        self.assertFalse(grade.is_self_check(test_lesson08.CommandLineTests(
            "test_help_prints_usage_and_succeeds"), "lesson08"))
        # The self-check would take 20 s and pass; it is neither run nor counted.
        status, card, err, seconds = grade_main(
            "test_lesson08.CommandLineTests.test_help_prints_usage_and_succeeds",
            "test_lesson08.WrongServerTests.test_lesson05s_polling_loop_fails_the_idle_test")
        self.assertEqual(status, 0, card + err)
        self.assertRegex(card, r"(?m)^lesson08 +1/1 +passed \(1 self-check of the lab not "
                         r"counted\)$")
        self.assertRegex(card, r"1 tests of the student's programs; 1 self-check of")
        self.assertLess(seconds, 15, "the self-check was run")


class GradeDescribeTests(unittest.TestCase):
    """Each failure says what the program did, in words, and names only its own claim."""

    def row(self, message, outcome="failed", **more):
        row = {"id": "test_lesson08.SelectTests.test_x", "label": "lesson08",
               "outcome": outcome, "message": message, "deaths": [], "servers": 1}
        row.update(more)
        return row

    def test_what_happened_in_words(self):
        import grade
        cases = [
            (self.row("expected a line within 5.0s, got only b''"), "never-answered",
             "never answered within 5.0s (the server was still running)"),
            (self.row("expected line b'hello', got b'%s'" % ("x" * 300)), "wrong-bytes",
             "answered the wrong bytes: expected b'hello', got b'xxxx"),
            (self.row("expected a line, but the server closed the connection after b''"),
             "closed-connection", "closed the connection"),
            (self.row("ConnectionRefusedError: [Errno 111] Connection refused", "error",
                      deaths=["server killed by SIGPIPE during the test"]),
             "killed", "killed by SIGPIPE"),
            (self.row("expected a line within 5.0s, got only b''",
                      deaths=["server exited with status 3 during the test; its stderr "
                              "ended:\n  oops"]), "exited", "exited with status 3"),
            (self.row("expected a line of the server's stdout matching '^listening on "
                      "(x)$', but it closed; lines were:\n  (none)\nstderr:\n  server: boom"),
             "refused-to-start", "refused to start: it ended"),
            (self.row("expected a line within 5.0s, got only b''", stopped=True, budget=60),
             "stopped", "grading limit of 60 s"),
        ]
        for row, kind, words in cases:
            with self.subTest(kind=kind):
                found_kind, found_words = grade.describe(row)
                self.assertEqual(found_kind, kind, found_words)
                self.assertIn(found_kind, grade.KINDS)
                self.assertIn(words, found_words)
                self.assertLess(len(found_words), 200, "shortened")
        kind, words = grade.describe(self.row("expected a line within 5.0s, got only b''"))
        self.assertNotIn("killed", words)
        refused = cases[5][0]
        self.assertEqual(grade.failure_detail(refused, "refused-to-start"),
                         ["stdout: (none)", "stderr: server: boom"])
        row = self.row("ConnectionRefusedError: x", "error",
                       deaths=["server killed by SIGPIPE during the test"])
        self.assertIn("stderr: server: boom", "\n".join(grade.failure_detail(
            dict(row, stderr=[("server 0", ["server: boom"])]), "killed")))

    def test_a_class_row_of_the_guide_is_not_named_as_each_tests_claim(self):
        import grade
        claims = grade.guide_claims()
        reset = "test_lesson08.HostileClientTests.test_reset_in_the_middle_of_a_line"
        self.assertNotEqual(grade.claim_for(reset, claims),
                            "Hostile clients do not end the server")
        self.assertEqual(grade.claim_for(reset, claims), "reset in the middle of a line")
        self.assertEqual(grade.claim_for(
            "test_lesson08.SelectTests.test_one_thread_serves_fifty_clients_at_once", claims),
            "One thread serves 50 clients at once, every answer on the right socket")


class GradeSpeedTests(MutationChecks):
    """Grading mode: a program that never answers costs a few seconds, not ten per wait."""

    def test_waits_are_capped_and_shorter_once_a_wait_of_the_lesson_expired(self):
        import os
        import tempfile
        import labtest
        saved = {name: os.environ.get(name) for name in ("LAB_GRADE_WAIT", "LAB_GRADE_STATE")}
        lesson, labtest._grading_lesson = labtest._grading_lesson, "08-select"

        def restore():
            labtest._grading_lesson = lesson
            for name, value in saved.items():
                os.environ.pop(name, None) if value is None else os.environ.update({name: value})
        self.addCleanup(restore)
        os.environ.pop("LAB_GRADE_WAIT", None)
        self.assertEqual(labtest.answer_wait(10.0), 10.0, "outside grading mode: unchanged")
        os.environ["LAB_GRADE_WAIT"] = "5"
        os.environ["LAB_GRADE_STATE"] = tempfile.mkdtemp()
        self.assertEqual(labtest.answer_wait(10.0), labtest.scaled(5.0))
        self.assertEqual(labtest.answer_wait(0.5), 0.5)
        labtest.note_expired_wait()
        self.assertEqual(labtest.answer_wait(10.0), labtest.scaled(1.0))
        self.assertEqual(labtest.answer_wait(10.0, printed=True), labtest.scaled(5.0))

    def test_a_server_that_never_answers_fails_in_seconds_saying_so(self):
        from labtest import peer_path
        # An edge-triggered server that does not drain never answers the line after an
        # over-long one: the test waits 10 s for it (--full-waits), graded 1 s here.
        status, card, err, seconds = grade_main(
            "test_lesson11.EdgeTriggeredTests.test_an_over_long_line_is_cut_off_and_the_client_served_on",
            "--wait", "1", "--server", peer_path("broken_epoll_no_drain.py"))
        self.assertEqual(status, 1, card + err)
        self.assertIn("never answered within 1.0s (the server was still running)", card)
        self.assertLess(seconds, 7, card)

    def test_a_test_past_its_budget_has_its_programs_stopped_and_its_output_kept(self):
        import socket
        import grade
        import labtest

        class Stuck(labtest.LabTestCase):
            LESSON = "03-iterative-server"

            def test_waits_on_a_raw_socket(self):
                print("measured: 42 units")
                server = self.start_server()
                first = self.connect(server)  # occupies lesson 03's only place
                sock = socket.create_connection(server.address)
                self.addCleanup(sock.close)
                sock.sendall(b"x\n")
                sock.settimeout(30)
                server.process.wait(20)  # ... until the grader stops it
                self.assertTrue(sock.recv(10), "no answer")

        suite = unittest.TestLoader().loadTestsFromTestCase(Stuck)
        rows = grade.run_one({"id": "unused", "budget": 1.0}, {}, suite=suite)
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0].get("stopped"), rows[0])
        self.assertEqual(grade.describe(rows[0])[0], "stopped")
        self.assertIn("measured: 42 units", rows[0]["output"], "prints go to the log")
        self.assertLess(rows[0]["seconds"], 10)


class GradeFromSourceTests(MutationChecks):
    """--source builds a student's server.c/client.c with the lab's flags against common/."""

    def test_the_flags_are_the_projects(self):
        import os
        import re
        import grade
        from labtest import TESTS_DIR
        with open(os.path.join(TESTS_DIR, "..", "CMakeLists.txt")) as text:
            cmake = text.read()
        warnings = re.search(r'GNU\|Clang"\)\s*add_compile_options\(([^)]*)\)', cmake)
        self.assertIsNotNone(warnings, "CMakeLists.txt's warning flags moved: update grade.py")
        flags = grade.lab_compile_flags()
        self.assertEqual([flag for flag in flags if flag.startswith("-W")], warnings.group(1).split())
        self.assertIn("-std=c11", flags)  # C_STANDARD 11, C_EXTENSIONS OFF
        self.assertIn("-D_POSIX_C_SOURCE=200809L", flags)

    def test_a_wrong_server_is_graded_and_a_compile_error_is_a_line_of_the_scorecard(self):
        import os
        import shutil
        import tempfile
        import xml.etree.ElementTree as ElementTree
        import variants
        from labtest import TESTS_DIR
        lab = os.path.dirname(TESTS_DIR)
        student = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, student, ignore_errors=True)
        # The lab's own wrong program as the student's: lesson 03 without its SIGPIPE policy.
        changed = variants.changed_sources(variants.read_variant("03-no-sigpipe"))
        with open(os.path.join(student, "server.c"), "w") as server:
            server.write(next(iter(changed.values())))
        with open(os.path.join(lab, "lessons", "03-iterative-server", "client.c")) as client:
            good_client = client.read()
        with open(os.path.join(student, "client.c"), "w") as client:
            client.write(good_client)
        junit = os.path.join(student, "grades.xml")
        status, card, err, _ = grade_main(
            "test_lesson03.HostileClientTests.test_answers_to_a_client_that_has_gone_do_not_kill_the_server",
            "test_lesson03.IterativeTests.test_serves_many_clients_one_after_another",
            "--source", student, "--junit", junit)
        self.assertEqual(status, 1, card + err)
        self.assertRegex(card, r"(?m)^lesson03 +1/2 +passed$")
        self.assertIn("server killed by SIGPIPE during the test", card)
        suites = ElementTree.parse(junit).getroot()
        self.assertEqual([suite.get("name") for suite in suites], ["lesson03"])
        failures = [case.find("failure") for case in suites.iter("testcase")
                    if case.find("failure") is not None]
        self.assertEqual([failure.get("type") for failure in failures], ["killed"])
        # A warning is an error with the lab's flags: the scorecard says so, with the message.
        with open(os.path.join(student, "client.c"), "w") as client:
            client.write(good_client.replace("int main(", "static int unused;\nint main(", 1))
        status, card, err, _ = grade_main("lesson03", "--source", student)
        self.assertEqual(status, 1, card + err)
        self.assertRegex(card, r"(?m)^lesson03 +did not build: client\.c$")
        self.assertRegex(card, r"unused.*unused-variable")


class GradeJUnitTests(unittest.TestCase):
    """JUnit XML: a testsuite per lesson, typed failures, stderr in system-err, self-checks
    skipped with the reason."""

    def test_the_xml_says_what_happened(self):
        import os
        import tempfile
        import xml.etree.ElementTree as ElementTree
        import grade
        rows = [{"label": "lesson03", "id": "test_lesson03.A.test_ok", "outcome": "passed",
                 "message": "", "deaths": [], "servers": 1, "seconds": 0.1, "output": ""},
                {"label": "lesson08", "id": "test_lesson08.B.test_broken", "outcome": "failed",
                 "message": "expected a line within 5.0s, got only b''", "deaths": [],
                 "servers": 1, "seconds": 5.0, "output": "measured 3 ms\n",
                 "stderr": [("server 0", ["server: select: Bad file descriptor"])]}]
        self_checks = [{"label": "lesson08", "id": "test_lesson08.WrongServerTests.test_w"}]
        path = os.path.join(tempfile.mkdtemp(), "grades.xml")
        grade.write_junit(path, rows, self_checks, {}, {})
        suites = ElementTree.parse(path).getroot()
        self.assertEqual([suite.get("name") for suite in suites], ["lesson03", "lesson08"])
        broken = suites[1].find("testcase[@name='test_broken']")
        self.assertEqual(broken.find("failure").get("type"), "never-answered")
        self.assertIn("Bad file descriptor", broken.find("system-err").text)
        self.assertIn("measured 3 ms", broken.find("system-out").text)
        skipped = suites[1].find("testcase[@name='test_w']/skipped")
        self.assertIn("self-check of the lab", skipped.get("message"))
        self.assertEqual(suites[1].get("failures"), "1")


class GradeDocsTests(MutationChecks):
    """The scorecard example of docs/instructors.md is what grade.py prints: its commands are
    run again (with a temporary directory for /tmp/student) and the scorecard compared - the
    lesson lines, each failure's claim, test and what happened, and the totals (the raw
    exception under them may differ from run to run: refused or reset)."""

    MARK = "<!-- scorecard: replayed by test_harness.GradeDocsTests -->"

    def blocks(self):
        import os
        from labtest import TESTS_DIR
        path = os.path.join(TESTS_DIR, "..", "docs", "instructors.md")
        lines = open(path, encoding="utf-8").read().split("\n")
        for number, line in enumerate(lines):
            if line.strip() == self.MARK:
                start = number + 1
                while not lines[start].startswith("```"):
                    start += 1
                end = start + 1
                while not lines[end].startswith("```"):
                    end += 1
                yield lines[start + 1:end]

    @staticmethod
    def compared(card_lines):
        kept, under_failure = [], 0
        for line in card_lines:
            if line.startswith("  FAIL  "):
                under_failure = 3
            if line.startswith("graded in "):
                continue
            if under_failure:
                kept.append(line)
                under_failure -= 1
            elif not line.startswith("        "):
                kept.append(line)
        return kept

    def test_the_documented_scorecard_is_what_grade_prints(self):
        import os
        import shutil
        import subprocess
        import tempfile
        from labtest import TESTS_DIR
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            # Lesson 03's namespace tests (root only) are counted in the documented card,
            # which was made where every test runs, as CI does.
            self.skipTest("the documented scorecard was made as root, where every test runs")
        blocks = list(self.blocks())
        self.assertTrue(blocks, "no block marked %s in docs/instructors.md" % self.MARK)
        for block in blocks:
            student = tempfile.mkdtemp()
            self.addCleanup(shutil.rmtree, student, ignore_errors=True)
            commands = [line[2:] for line in block if line.startswith("$ ")]
            expected = block[max(index for index, line in enumerate(block)
                                 if line.startswith("$ ")) + 1:]
            for command in commands:
                finished = subprocess.run(
                    command.replace("/tmp/student", student), shell=True,
                    cwd=os.path.dirname(TESTS_DIR), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, timeout=300)
            card = finished.stdout.decode().rstrip("\n").split("\n")
            self.assertEqual(self.compared(card), self.compared(expected),
                             "docs/instructors.md's scorecard differs from grade.py's:\n"
                             + "\n".join(card))
