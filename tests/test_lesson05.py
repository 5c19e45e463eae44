"""Lesson 05 - many clients, one thread: the claims of lessons/05-nonblocking-many/README.md."""
import os
import re
import select
import signal
import socket
import time

from labtest import (AcceptBackoffCheck, CommandLineChecks, LabTestCase, LINE_MAX, MutationChecks,
                     TOO_LONG_REPLY, open_descriptor_count, peer_path,
                     program_path, sanitizer, scaled, thread_count, under_emulator, wait_until)
from polling import (PollIntervalArgumentCheck, PollIntervalChecks, describe_difference,
                     idle_cpu_share, numbered_lines, push_without_reading, wait_readable)

LESSON = "05-nonblocking-many"
MAX_CLIENTS = 256  # MAX_CLIENTS in lessons/05-nonblocking-many/server.c
PUSHED_BYTES = 12 * 1024 * 1024  # well beyond what loopback's socket buffers hold (~6 MB)
CONNECTED = r"^client connected from 127\.0\.0\.1:\d+$"
DISCONNECTED = r"^client 127\.0\.0\.1:\d+ disconnected$"


class ManyClientsTests(LabTestCase):
    """One thread serves every connected client, turn by turn, none waiting for another."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    def connect_many(self, count):
        connections = [self.connect(self.server) for _ in range(count)]
        for _ in connections:
            self.server.stdout.expect(CONNECTED)
        return connections

    def test_fifty_clients_connected_at_once_are_all_answered_in_turn(self):
        connections = self.connect_many(50)
        for round_number in range(3):  # interleaved: every client speaks before any reads
            for number, connection in enumerate(connections):
                connection.send_line("client %d round %d" % (number, round_number))
            for number, connection in enumerate(connections):
                connection.expect_line("client %d round %d" % (number, round_number))

    def test_a_client_with_half_a_line_does_not_delay_the_others(self):
        silent = self.connect(self.server)
        silent.send(b"half a li")
        self.server.stdout.expect(CONNECTED)
        started = time.monotonic()
        for number in range(5):
            other = self.connect(self.server)
            other.send_line("other %d" % number)
            other.expect_line("other %d" % number, timeout=2)
        elapsed = time.monotonic() - started
        silent.send(b"ne\n")
        silent.expect_line("half a line")
        self.assertLess(elapsed, 5, "five round trips took %.1f s" % elapsed)

    def test_partial_lines_of_two_clients_never_mix(self):
        first, second = self.connect(self.server), self.connect(self.server)
        for part_of_first, part_of_second in ((b"ap", b"ban"), (b"pl", b"an"), (b"e\n", b"a\n")):
            first.send(part_of_first)
            second.send(part_of_second)
            time.sleep(0.03)  # pace: each part lands in another round of the loop
        first.expect_line("apple")
        second.expect_line("banana")

    def test_a_client_that_never_reads_does_not_stall_the_others(self):
        hog = self.connect(self.server)
        hog.sock.settimeout(0.5)
        sent = 0
        try:
            while sent < 32 * 1024 * 1024:
                sent += hog.sock.send(b"h" * 1000 + b"\n")
        except socket.timeout:
            pass  # every buffer between us is full: the server no longer reads the hog
        self.assertLess(sent, 32 * 1024 * 1024, "the server should stop reading a non-reader")
        for number in range(5):
            other = self.connect(self.server)
            other.send_line("not stalled %d" % number)
            other.expect_line("not stalled %d" % number, timeout=2)
        hog.reset()
        self.assertTrue(self.server.running())

    def test_clients_that_close_without_reading_do_not_kill_the_server(self):
        # Each client sends lines and closes before any answer: the server's first answer
        # brings back RST, and a send() after that raises SIGPIPE unless it is ignored.
        bystander = self.connect(self.server)
        for _ in range(5):
            gone = self.connect(self.server)
            gone.send(b"an answer nobody reads\n" * 200)
            gone.close()
            time.sleep(0.3)  # pace: one departed client at a time
        bystander.send_line("still served")
        bystander.expect_line("still served")
        self.assertTrue(self.server.running())

    def test_a_line_without_end_is_cut_off_at_the_limit_not_stored(self):
        connection = self.connect(self.server)
        connection.send(b"m" * (LINE_MAX * 5))
        connection.expect_line(TOO_LONG_REPLY)
        connection.send(b"m" * 1000 + b"\nafter\n")
        connection.expect_line("after")

    def test_a_partial_send_is_finished_later_not_dropped(self):
        pusher = self.connect(self.server)
        bystander = self.connect(self.server)
        data = numbered_lines(PUSHED_BYTES)
        stalled, sent_first, answers = push_without_reading(pusher.sock, data)
        if answers != data:  # every answer, whole, in order, none twice
            self.fail(describe_difference(data, answers))
        self.assertTrue(stalled, "the server should stop reading a client that does not read")
        bystander.send_line("still served")
        bystander.expect_line("still served")

    def test_fifty_clients_leaving_at_the_same_moment_leave_the_server_healthy(self):
        connections = self.connect_many(50)
        for number, connection in enumerate(connections):
            connection.send_line("hello %d" % number)
        for number, connection in enumerate(connections):
            connection.expect_line("hello %d" % number)
        for number, connection in enumerate(connections):
            if number % 3 == 0:
                connection.send_line("an answer left unread")
                wait_readable(connection.sock)
                connection.close()  # unread bytes: RST, and the server's recv() fails
            elif number % 3 == 1:
                connection.reset()  # RST from SO_LINGER 0 (Linux then reports end of file)
            else:
                connection.send(b"half a line, then gone")
                connection.close()  # FIN: the server's recv() returns 0
        for _ in connections:
            self.server.stdout.expect(DISCONNECTED)
        after = self.connect(self.server)
        after.send_line("after the crowd")
        after.expect_line("after the crowd")
        after.close()
        self.server.stdout.expect(DISCONNECTED)
        self.assertEqual(sum(1 for line in self.server.stdout.lines if "disconnected" in line),
                         51, "each client leaves exactly once:\n" + self.server.stdout.text())
        self.assertTrue(self.server.running())

    def test_a_full_server_turns_the_next_client_away_and_serves_it_later(self):
        connections = self.connect_many(MAX_CLIENTS)
        extra = self.connect(self.server)
        extra.expect_line("error: server full")
        extra.expect_eof()
        self.server.stdout.expect(r"^client 127\.0\.0\.1:\d+ turned away: server full$")
        connections[0].close()
        self.server.stdout.expect(DISCONNECTED)
        newcomer = self.connect(self.server)  # the freed slot takes it
        newcomer.send_line("a slot came free")
        newcomer.expect_line("a slot came free")
        connections[-1].send_line("the last one is still served")
        connections[-1].expect_line("the last one is still served")

    def test_a_newcomer_that_resets_before_it_is_turned_away_is_warned_about(self):
        # The table is full; a newcomer connects and resets while the server is stopped, so
        # the server's send() of "server full" meets the reset: it says so, and serves on.
        if under_emulator() or not hasattr(signal, "SIGSTOP"):
            self.skipTest("stops the server with SIGSTOP: POSIX native builds only")
        connections = self.connect_many(MAX_CLIENTS)
        os.kill(self.server.pid, signal.SIGSTOP)
        try:
            newcomer = self.connect(self.server)
            peer = re.escape("127.0.0.1:%d" % newcomer.sock.getsockname()[1])
            newcomer.reset()
        finally:
            os.kill(self.server.pid, signal.SIGCONT)
        self.server.stderr.expect(r"^server: send %s: " % peer, what="the failed send")
        self.server.stdout.expect(r"^client %s turned away: server full$" % peer)
        connections[0].send_line("still served")
        connections[0].expect_line("still served")


class EchoTests(LabTestCase):
    """Lesson 02's framing still holds for each client of the table."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.connection = self.connect(self.server)
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def test_one_byte_at_a_time_is_answered_once_the_line_is_whole(self):
        for byte in b"hello\n":
            self.connection.send(bytes([byte]))
            time.sleep(0.02)  # pace: each byte lands in another round of the loop
        self.connection.expect_line("hello")

    def test_many_lines_in_one_write_get_one_answer_each_in_order(self):
        lines = [("line %d " % number) * 5 for number in range(500)]
        self.connection.send("".join(line + "\n" for line in lines).encode())
        for line in lines:
            self.connection.expect_line(line)

    def test_an_over_long_line_gets_the_documented_answer_and_service_goes_on(self):
        self.connection.send(b"y" * (LINE_MAX * 50) + b"\nafter\n")
        self.connection.expect_line(TOO_LONG_REPLY)
        self.connection.expect_line("after")

    def test_lines_sent_before_a_half_close_are_all_answered_then_the_server_closes(self):
        lines = ["before the end %d" % number for number in range(100)]
        self.connection.send("".join(line + "\n" for line in lines).encode())
        self.connection.shutdown_write()
        for line in lines:
            self.connection.expect_line(line)
        self.connection.expect_eof()

    def test_the_client_program_talks_to_it_while_another_client_stays(self):
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(self.server.port)],
                                            b"one\ntwo\n")
        self.assertEqual((status, out), (0, ["connected to 127.0.0.1:%d" % self.server.port,
                                             "one", "two"]), "stderr: %s" % err)


class ResourceTests(AcceptBackoffCheck, LabTestCase):
    """One thread, and no descriptor outlives its client (Linux /proc)."""
    LESSON = LESSON

    def test_out_of_descriptors_keeps_serving_the_clients_it_has(self):
        # With 16 descriptors the server runs out long before its table is full: the
        # clients it has are served on, the newcomers wait queued, and a client leaving
        # lets the next one in. Lesson 03's policy (end the server) would fail this.
        self.require_linux_proc()
        server = self.start_server(path="/bin/sh", args=[
            "-c", 'export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; '
            'ulimit -n 16 && exec "$0" 0', self.program("server")])
        connections = [self.connect(server) for _ in range(24)]
        server.stderr.expect(r"^server: accept: Too many open files$")
        for connection in connections:
            connection.send_line("hello")
        readable, _, _ = select.select([c.sock for c in connections], [], [], scaled(2))
        served = [c for c in connections if c.sock in readable]
        waiting = [c for c in connections if c.sock not in readable]
        self.assertTrue(served and waiting, "%d served, %d waiting: expected some of each"
                        % (len(served), len(waiting)))
        for connection in served:
            connection.expect_line("hello")
            connection.close()
        for connection in waiting:  # each gets in as descriptors come back
            connection.expect_line("hello")
            connection.close()  # and gives its own back for the next one
        self.assertTrue(server.running())


    def test_one_thread_serves_everybody(self):
        self.require_linux_proc()
        server = self.start_server()
        baseline = thread_count(server.pid)
        connections = [self.connect(server) for _ in range(20)]
        for number, connection in enumerate(connections):
            connection.send_line("thread check %d" % number)
        for number, connection in enumerate(connections):
            connection.expect_line("thread check %d" % number)
        allowed = 1 + (1 if sanitizer() == "thread" else 0)  # TSan may start a helper
        self.assertEqual(baseline, 1, "one thread at start, not %d" % baseline)
        self.assertLessEqual(thread_count(server.pid), allowed,
                             "20 clients connected: threads went from %d to %d"
                             % (baseline, thread_count(server.pid)))

    def test_no_descriptor_leaks_after_500_connections(self):
        self.require_linux_proc()
        server = self.start_server(["0", "127.0.0.1", "1"])  # a short pause: a quick test
        baseline = open_descriptor_count(server.pid)
        for number in range(500):
            connection = self.connect(server)
            if number % 3 == 0:
                connection.close()  # gone before a word
            elif number % 3 == 1:
                connection.send_line("cycle %d" % number)
                connection.expect_line("cycle %d" % number)
                connection.close()
            else:
                connection.send(b"half")
                connection.reset()
        wait_until(lambda: open_descriptor_count(server.pid) <= baseline, 10,
                   "the server's descriptors to come back to %d (now %d)"
                   % (baseline, open_descriptor_count(server.pid)))

class PollingCostTests(PollIntervalChecks, LabTestCase):
    """Lesson 04's trade, unchanged: little CPU while idle, at most POLL-MS more delay."""
    LESSON = LESSON

    def test_an_idle_server_uses_little_cpu_even_with_fifty_silent_clients(self):
        self.require_linux_proc()
        server = self.start_server()  # the default POLL-MS, 10
        share = idle_cpu_share(server.pid, 1.5)
        self.assertLess(share, 0.10, "no client: %.0f%% of a core" % (share * 100))
        connections = [self.connect(server) for _ in range(50)]
        for _ in connections:
            server.stdout.expect(CONNECTED)
        share = idle_cpu_share(server.pid, 1.5)
        self.assertLess(share, 0.10, "50 silent clients: %.0f%% of a core" % (share * 100))

class CommandLineTests(PollIntervalArgumentCheck, CommandLineChecks, LabTestCase):
    LESSON = LESSON

ONE_AT_A_TIME_FAILS = ["test_fifty_clients_connected_at_once_are_all_answered_in_turn",
                       "test_a_client_with_half_a_line_does_not_delay_the_others",
                       "test_a_client_that_never_reads_does_not_stall_the_others"]


class WrongServerTests(MutationChecks):
    """The tests above fail on servers that get this lesson's ideas wrong."""

    def test_fails_a_server_that_serves_one_client_at_a_time(self):
        self.assert_suite_fails(
            ["test_lesson05.ManyClientsTests." + name for name in ONE_AT_A_TIME_FAILS],
            ONE_AT_A_TIME_FAILS,
            server=program_path("04-nonblocking-server", "server", own=False))

    def test_fails_a_server_with_a_thread_per_client(self):
        self.assert_suite_fails(
            ["test_lesson05.ResourceTests.test_one_thread_serves_everybody"],
            ["test_one_thread_serves_everybody"],
            server=peer_path("seed_threaded_server.py"))
