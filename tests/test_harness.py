"""The tests fail when the behaviour is wrong: each lesson's tests against wrong servers.

Runs natively only: each check starts a whole lesson's tests in a child process."""
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
