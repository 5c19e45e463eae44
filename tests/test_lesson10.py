"""Lesson 10 - poll: the claims of lessons/10-poll/README.md."""

from eventloop import EventLoopChecks, ResetChecks, connect_many, echo_rounds
from labtest import (CommandLineChecks, EchoClientChecks, HostileClientChecks, LabTestCase,
                     LoopBackoffCheck, MutationChecks, NameChecks, peer_path, rss_bytes,
                     sanitizer, under_emulator)

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


class ArrayTests(LabTestCase):
    """The array poll() reads is kept from wake to wake: memory stays flat however many
    times the loop wakes."""
    LESSON = LESSON

    def test_memory_stays_flat_over_twenty_thousand_wakes(self):
        # With 100 clients the array is 808 bytes: a new one per wake that is never freed
        # grows the server by about 16 MB over 20,000 wakes; a kept one by nothing.
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer keeps freed memory in quarantine: RSS is not the "
                          "program's own")
        server = self.start_server()
        connect_many(self, server, 100)
        active = self.connect(server)
        echo_rounds([active], rounds=200, tag="warm up")
        before = rss_bytes(server.pid)
        echo_rounds([active], rounds=20000, tag="wake")
        growth = rss_bytes(server.pid) - before
        self.assertLess(growth, 1 << 20, "RSS grew by %d KB over 20,000 wakes" % (growth >> 10))


class HostileClientTests(HostileClientChecks, LabTestCase):
    LESSON = LESSON


class ResourceTests(LoopBackoffCheck, LabTestCase):
    LESSON = LESSON


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON


class ClientTests(EchoClientChecks, LabTestCase):
    """The client is lesson 03's, from common/ (lab_connect, lab_echo_stdin): it connects,
    by number or by name, and prints each answer."""
    LESSON = LESSON


class ResetTests(ResetChecks, LabTestCase):
    """A client that resets is dropped and named, at the failed send or recv."""
    LESSON = LESSON


class NameTests(NameChecks, LabTestCase):
    """lab_listen() and lab_connect() (common/resolve.c), which lesson 03 wrote out: a name
    that does not resolve is named in the error; a name's addresses are tried in turn, and
    the socket of an address that failed is closed before the next is tried."""
    LESSON = LESSON


class WrongServerTests(MutationChecks):
    """A poll loop that reads events (what it asked for) instead of revents (what
    happened) believes every socket is ready; with blocking sockets it stalls."""

    def test_a_poll_server_reading_events_instead_of_revents_fails(self):
        self.assert_suite_fails(
            ["test_lesson10.PollTests.test_fifty_silent_half_line_clients_and_a_non_reader_stall_nobody"],
            ["test_fifty_silent_half_line_clients_and_a_non_reader_stall_nobody"],
            server=peer_path("broken_poll_reads_events.py"))

    def test_a_poll_server_with_a_new_array_every_wake_fails(self):
        self.assert_suite_fails(
            ["test_lesson10.ArrayTests"], ["test_memory_stays_flat_over_twenty_thousand_wakes"],
            server=self.variant_path("10-array-per-wake"))
