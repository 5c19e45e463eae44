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
