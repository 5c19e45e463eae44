"""Lesson 10 - poll: the claims of lessons/10-poll/README.md."""
from eventloop import EventLoopChecks, echo_rounds
from labtest import (AcceptBackoffCheck, CommandLineChecks, HostileClientChecks, LabTestCase,
                     MutationChecks, peer_path, under_emulator)

LESSON = "10-poll"
FD_SETSIZE = 1024  # select()'s limit, which poll() does not have
MANY_CLIENTS = 2000


class PollTests(EventLoopChecks, LabTestCase):
    """One thread, asleep in poll() until a socket is ready, serves every client."""
    LESSON = LESSON
    WAIT_CALLS = ("poll",)


class NoFdSetSizeTests(LabTestCase):
    """poll() takes an array as long as needed: more clients than FD_SETSIZE are served."""
    LESSON = LESSON

    def test_two_thousand_clients_more_than_fd_setsize_are_all_served(self):
        server = self.start_server()
        if not under_emulator():
            self.require_linux_proc()
            import resource
            resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (MANY_CLIENTS + 64,) * 2)
        connections = [self.connect(server) for _ in range(MANY_CLIENTS)]
        self.assertGreater(len(connections), FD_SETSIZE)
        echo_rounds(connections)  # each sends, then all answers are read, last first
        echo_rounds([connections[0], connections[-1]], tag="again")


class HostileClientTests(HostileClientChecks, LabTestCase):
    LESSON = LESSON


class ResourceTests(AcceptBackoffCheck, LabTestCase):
    LESSON = LESSON


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON


class WrongServerTests(MutationChecks):
    """A poll loop that reads events (what it asked for) instead of revents (what
    happened) believes every socket is ready; with blocking sockets it stalls."""

    def test_a_poll_server_reading_events_instead_of_revents_fails(self):
        self.assert_suite_fails(
            ["test_lesson10.PollTests.test_fifty_silent_half_line_clients_and_a_non_reader_stall_nobody"],
            ["test_fifty_silent_half_line_clients_and_a_non_reader_stall_nobody"],
            server=peer_path("broken_poll_reads_events.py"))
