"""Lesson 04 - the non-blocking server: the claims of lessons/04-nonblocking-server/README.md."""
import socket
import time

from labtest import (CommandLineChecks, HostileClientChecks, LabTestCase, LINE_MAX,
                     MutationChecks, OneAtATimeChecks, OutOfDescriptorsCheck, TOO_LONG_REPLY,
                     peer_path, program_path, under_emulator)
from polling import (PollIntervalArgumentCheck, PollIntervalChecks, blocked_call_samples,
                     describe_difference, idle_cpu_share, numbered_lines,
                     push_without_reading, sleep_syscalls, wait_readable)

LESSON = "04-nonblocking-server"
PUSHED_BYTES = 12 * 1024 * 1024  # well beyond what loopback's socket buffers hold (~6 MB)


class EchoTests(LabTestCase):
    """Non-blocking calls return early and often; the answers stay exactly lesson 02's."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.connection = self.connect(self.server)
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def test_one_byte_at_a_time_is_answered_once_the_line_is_whole(self):
        for byte in b"hel":
            self.connection.send(bytes([byte]))
            time.sleep(0.02)  # pace: each byte lands in another round of the loop
        self.connection.expect_silence(0.3)
        for byte in b"lo\n":
            self.connection.send(bytes([byte]))
            time.sleep(0.02)  # pace
        self.connection.expect_line("hello")

    def test_many_lines_in_one_write_get_one_answer_each_in_order(self):
        lines = [("line %d " % number) * 5 for number in range(500)]
        self.connection.send("".join(line + "\n" for line in lines).encode())
        for line in lines:
            self.connection.expect_line(line)

    def test_an_over_long_line_gets_the_documented_answer_and_service_goes_on(self):
        for length in (LINE_MAX + 1, 100000):
            self.connection.send(b"y" * length + b"\n")
            self.connection.expect_line(TOO_LONG_REPLY)
            self.connection.send_line("still there?")
            self.connection.expect_line("still there?")

    def test_lines_sent_before_a_half_close_are_all_answered_then_the_server_closes(self):
        lines = ["before the end %d" % number for number in range(100)]
        self.connection.send("".join(line + "\n" for line in lines).encode() + b"no newline")
        self.connection.shutdown_write()
        for line in lines:
            self.connection.expect_line(line)
        self.connection.expect_eof()  # the unfinished line is dropped, as in lesson 02


class PendingOutputTests(LabTestCase):
    """What send() does not take now is sent later; a client that does not read is held back."""
    LESSON = LESSON

    def test_a_partial_send_is_finished_later_not_dropped(self):
        server = self.start_server()
        connection = self.connect(server)
        data = numbered_lines(PUSHED_BYTES)
        stalled, sent_first, answers = push_without_reading(connection.sock, data)
        if answers != data:  # every answer, whole, in order, none twice
            self.fail(describe_difference(data, answers))
        # The sends stalled with data left: the server had stopped reading us, which it
        # does only while its pending output is full - its own sends were blocking.
        self.assertTrue(stalled, "the server should stop reading a client that does not read "
                        "(backpressure); it took all %d bytes" % len(data))
        self.assertLess(sent_first, len(data))


class HostileClientTests(HostileClientChecks, LabTestCase):
    """Nothing one client does ends the server: the next client is always served."""
    LESSON = LESSON

    def test_a_client_that_leaves_without_reading_its_answer(self):
        # Closing with unread bytes makes the client's kernel send RST, and the server's
        # next recv() fails with ECONNRESET instead of returning 0: an error, not an end.
        connection = self.connect(self.server)
        connection.send_line("an answer nobody reads")
        wait_readable(connection.sock)
        connection.close()
        if not under_emulator():  # Wine's recv() reports this reset as end of file
            self.server.stderr.expect(r"^server: recv 127\.0\.0\.1:\d+: Connection reset")
        self.assert_next_client_served()

    def test_half_a_line_then_silence_gets_no_answer_until_the_line_ends(self):
        connection = self.connect(self.server)
        connection.send(b"no end of line")
        connection.expect_silence(0.5)
        connection.send(b" - now it ends\n")
        connection.expect_line("no end of line - now it ends")
        connection.close()
        self.assert_next_client_served()

    def test_a_client_that_never_reads_then_resets(self):
        connection = self.connect(self.server)
        connection.sock.settimeout(0.5)
        sent = 0
        try:
            while sent < 32 * 1024 * 1024:
                sent += connection.sock.send(b"x" * 1000 + b"\n")
        except socket.timeout:
            pass  # every buffer between us is full: the server stopped reading us
        self.assertLess(sent, 32 * 1024 * 1024, "the server should stop reading a non-reader")
        connection.reset()
        self.assert_next_client_served()
        self.assertTrue(self.server.running())


class OneAtATimeTests(OneAtATimeChecks, LabTestCase):
    """Like lesson 03, one client is served at a time: the next one waits in the backlog."""
    LESSON = LESSON

    def test_the_client_program_talks_to_it(self):
        server = self.start_server()
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(server.port)], b"one\ntwo\n")
        self.assertEqual((status, out), (0, ["connected to 127.0.0.1:%d" % server.port,
                                             "one", "two"]), "stderr: %s" % err)


class PollingCostTests(PollIntervalChecks, LabTestCase):
    """The pause after an idle round: little CPU while idle, at most POLL-MS more delay."""
    LESSON = LESSON

    def test_an_idle_server_uses_little_cpu(self):
        self.require_linux_proc()
        server = self.start_server()  # the default POLL-MS, 10
        share = idle_cpu_share(server.pid, 1.5)
        self.assertLess(share, 0.10, "no client: %.0f%% of a core" % (share * 100))
        connection = self.connect(server)
        connection.send_line("then silence")
        connection.expect_line("then silence")
        share = idle_cpu_share(server.pid, 1.5)
        self.assertLess(share, 0.10, "a silent client: %.0f%% of a core" % (share * 100))

    def test_the_server_waits_only_in_its_pause_never_in_a_socket_call(self):
        self.require_linux_proc()
        if sleep_syscalls() is None:
            self.skipTest("system call numbers of this machine are not in tests/polling.py")
        server = self.start_server()
        connection = self.connect(server)
        connection.send(b"half a line, then silence")  # a blocking recv() would wait here
        server.stdout.expect(r"^client connected from ")
        seen = blocked_call_samples(server.pid, 100, 0.013)
        self.assertGreaterEqual(len(seen), 50, "a polling server should be found asleep in "
                                "most samples, not running (%d of 100)" % len(seen))
        sleeping = sum(1 for number in seen if number in sleep_syscalls())
        # Now and then a sample catches the loop inside a call that returns at once; a
        # server blocked in recv() or accept() shows that call in nearly every sample.
        self.assertGreaterEqual(sleeping, 0.8 * len(seen),
                                "system calls the server waited in: %s" % sorted(set(seen)))

class ResourceTests(OutOfDescriptorsCheck, LabTestCase):
    LESSON = LESSON

class CommandLineTests(PollIntervalArgumentCheck, CommandLineChecks, LabTestCase):
    LESSON = LESSON

    def test_help_names_the_poll_interval(self):
        status, out, err = self.run_program(self.program("server"), ["--help"])
        self.assertEqual(status, 0)
        self.assertIn("usage: server [PORT [BIND-ADDRESS [POLL-MS]]]", out[0])
        self.assertIn("POLL-MS", "\n".join(out[1:]))


class WrongServerTests(MutationChecks):
    """The tests above fail on servers that get this lesson's ideas wrong."""

    def test_fails_a_server_that_never_pauses(self):
        self.assert_suite_fails(
            ["test_lesson04.PollingCostTests"],
            # Not the 50 ms delay test: on a loaded machine even a spinning server can
            # take 10 ms to answer. It fails on this peer when the machine is quiet.
            ["test_an_idle_server_uses_little_cpu",
             "test_the_server_waits_only_in_its_pause_never_in_a_socket_call",
             "test_a_longer_interval_adds_more_delay"],
            server=peer_path("broken_busy_poll.py"))

    def test_fails_a_server_that_drops_what_send_did_not_take(self):
        self.assert_suite_fails(
            ["test_lesson04.PendingOutputTests"],
            ["test_a_partial_send_is_finished_later_not_dropped"],
            server=peer_path("broken_drops_unsent.py"))

    def test_fails_a_server_without_backpressure(self):
        self.assert_suite_fails(
            ["test_lesson04.PendingOutputTests.test_a_partial_send_is_finished_later_not_dropped",
             "test_lesson04.HostileClientTests.test_a_client_that_never_reads_then_resets"],
            ["test_a_partial_send_is_finished_later_not_dropped",
             "test_a_client_that_never_reads_then_resets"],
            server=peer_path("broken_unbounded_output.py"))

    def test_fails_a_server_that_serves_every_client_at_once(self):
        self.assert_suite_fails(
            ["test_lesson04.OneAtATimeTests"],
            ["test_a_second_client_waits_until_the_first_leaves_then_is_served"],
            server=program_path("05-nonblocking-many", "server", own=False))
