"""Lesson 08 - select: the claims of lessons/08-select/README.md."""
import os
import socket

from eventloop import CONNECTED, EventLoopChecks, connect_many, echo_rounds
from labtest import (CommandLineChecks, HostileClientChecks, LabTestCase, LoopBackoffCheck,
                     MutationChecks, QuietServerCheck, peer_path, program_path, under_emulator)

LESSON = "08-select"
FD_SETSIZE = 1024  # glibc's, and what the lesson defines for Winsock


class SelectTests(EventLoopChecks, LabTestCase):
    """One thread, asleep in select() until a socket is ready, serves every client."""
    LESSON = LESSON
    WAIT_CALLS = ("select",)


class FdSetSizeTests(LabTestCase):
    """A socket that does not fit in an fd_set is turned away before any FD_SET, and the
    server serves on (POSIX: descriptor >= FD_SETSIZE; Winsock: more than FD_SETSIZE
    sockets in a set)."""
    LESSON = LESSON

    def test_a_socket_past_fd_setsize_is_refused_and_the_others_are_served(self):
        server = self.start_server()
        if under_emulator():
            room = FD_SETSIZE - 1  # Winsock counts sockets: the listener and 1023 clients
        else:
            self.require_linux_proc()
            import resource  # the server may open more than FD_SETSIZE descriptors
            resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (FD_SETSIZE + 64,) * 2)
            highest = max(int(name) for name in os.listdir("/proc/%d/fd" % server.pid))
            room = FD_SETSIZE - 1 - highest  # descriptors highest+1 .. 1023 still fit
        connections = connect_many(self, server, room)
        refused = self.connect(server)
        server.stderr.expect(r"^server: client 127\.0\.0\.1:%d: socket \d+ does not fit in an "
                             r"fd_set of 1024$" % refused.sock.getsockname()[1],
                             what="the server's stderr")
        refused.expect_eof()
        echo_rounds([connections[0], connections[-1]], tag="still served")
        connections[0].close()  # its descriptor comes back, below FD_SETSIZE
        server.stdout.expect(r"^client 127\.0\.0\.1:\d+ disconnected$")
        newcomer = self.connect(server)
        server.stdout.expect(CONNECTED)
        echo_rounds([newcomer, connections[-1]], tag="after")
        self.assertTrue(server.running())


class QuietTests(QuietServerCheck, LabTestCase):
    LESSON = LESSON


class HostileClientTests(HostileClientChecks, LabTestCase):
    """Connect-and-close, reset mid-line, departed clients, endless lines: the next client
    is served and the server lives."""
    LESSON = LESSON


class ResourceTests(LoopBackoffCheck, LabTestCase):
    LESSON = LESSON


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON


class WrongServerTests(MutationChecks):
    """Wrong event loops fail the tests that name their mistake."""

    def test_a_select_server_always_asking_for_writability_spins(self):
        self.assert_suite_fails(
            ["test_lesson08.SelectTests.test_while_idle_it_sleeps_in_its_waiting_call_and_uses_no_cpu"],
            ["test_while_idle_it_sleeps_in_its_waiting_call_and_uses_no_cpu"],
            server=peer_path("broken_select_always_writable.py"))

    def test_a_select_server_that_sets_past_fd_setsize_fails(self):
        self.assert_suite_fails(
            ["test_lesson08.FdSetSizeTests"],
            ["test_a_socket_past_fd_setsize_is_refused_and_the_others_are_served"],
            server=peer_path("broken_select_no_fd_setsize_check.py"))

    def test_a_select_server_reading_while_its_output_is_full_spins(self):
        self.assert_suite_fails(
            ["test_lesson08.SelectTests"],
            ["test_beside_a_client_that_does_not_read_it_uses_no_cpu"],
            server=self.variant_path("08-reads-while-full"))

    def test_a_select_server_serving_every_client_on_every_wake_fails(self):
        self.assert_suite_fails(
            ["test_lesson08.SelectTests"], ["test_only_the_ready_clients_are_served"],
            server=self.variant_path("08-serves-everyone"))

    def test_a_select_server_closing_at_end_of_file_with_answers_queued_fails(self):
        if os.geteuid() != 0:
            self.skipTest("the half-close test needs root (a network namespace); CI runs it")
        self.assert_suite_fails(
            ["test_lesson08.SelectTests"],
            ["test_after_a_half_close_every_answer_comes_though_the_buffers_were_full"],
            server=self.variant_path("08-close-at-eof"))

    def test_a_round_that_stops_after_one_send_fails(self):
        if os.geteuid() != 0:
            self.skipTest("the stop-and-go batch test needs root (a network namespace)")
        self.assert_suite_fails(
            ["test_lesson08.SelectTests"],
            ["test_a_pipelined_batch_is_answered_in_full_when_its_answers_leave_at_once"],
            server=self.variant_path("08-round-stops-after-send"))

    def test_a_select_server_sleeping_in_its_loop_out_of_descriptors_fails(self):
        self.assert_suite_fails(
            ["test_lesson08.ResourceTests"],
            ["test_out_of_descriptors_the_loop_does_not_sleep_on_its_clients"],
            server=self.variant_path("08-accept-sleeps"))

    def test_lesson05s_polling_loop_fails_the_idle_test(self):
        # Its 10 ms pause: about 3% of a core with 100 clients, asleep in nanosleep().
        self.assert_suite_fails(
            ["test_lesson08.SelectTests.test_while_idle_it_sleeps_in_its_waiting_call_and_uses_no_cpu"],
            ["test_while_idle_it_sleeps_in_its_waiting_call_and_uses_no_cpu"],
            server=program_path("05-nonblocking-many", "server", own=False))
