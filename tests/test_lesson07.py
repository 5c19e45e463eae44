"""Lesson 07 - thread pool: the claims of lessons/07-thread-pool/README.md."""
import errno
import fcntl
import os
import re
import signal
import socket
import struct
import sys
import termios
import threading

from labtest import (AcceptBackoffCheck, CommandLineChecks, EchoClientChecks, HostileClientChecks,
                     LabTestCase, LINE_MAX, MutationChecks, TOO_LONG_REPLY, fill_until_blocked,
                     linux_proc_available, open_descriptor_count, peer_path, program_path,
                     sanitizer, scaled, thread_count, under_emulator, wait_until)

LESSON = "07-thread-pool"
DEFAULT_WORKERS = 4  # DEFAULT_WORKERS in lessons/07-thread-pool/server.c
QUEUE_SIZE = 16  # QUEUE_SIZE there: clients waiting for a worker
READ_AWAY = 16 * 1024  # turn_away() reads at most this much of what a newcomer sent
BUSY_REPLY = "error: server busy"
CONNECTED = r"^client connected from %s$"
SERVES = r"^worker \d+ serves client %s$"
DISCONNECTED = r"^client %s disconnected$"
TURNED_AWAY = r"^client %s turned away: server busy$"
ANY_PEER = r"127\.0\.0\.1:\d+"


def threads_allowed(workers):
    """The workers and the main thread; ThreadSanitizer adds a helper thread of its own."""
    return workers + 1 + (1 if sanitizer() == "thread" else 0)


def peer_of(connection):
    """"127.0.0.1:PORT" of a test connection, as the server prints its client."""
    return "127.0.0.1:%d" % connection.sock.getsockname()[1]


def lines_matching(server, pattern):
    """The server's stdout lines so far that match pattern (a regex)."""
    regex = re.compile(pattern)
    return [line for line in list(server.stdout.lines) if regex.match(line)]


def wait_for_line(server, pattern, connections, timeout=20.0):
    """Waits until the server has printed pattern's line for each connection, in any order
    (two workers may print in either order)."""
    def printed():
        lines = set(server.stdout.lines)
        return all(any(re.match(pattern % re.escape(peer_of(c)), line) for line in lines)
                   for c in connections)
    wait_until(printed, timeout, "the server's %r line for %d clients"
               % (pattern % "PEER", len(connections)))


def occupy_workers(test, server, count):
    """Connects count silent clients and waits until a worker serves each: those workers
    are then held until the clients leave."""
    silent = [test.connect(server) for _ in range(count)]
    wait_for_line(server, SERVES, silent)
    return silent


def expect_clean_eof(connection):
    """End of file and no reset, even one after it (Connection.expect_eof() accepts a reset).
    Call it once the server has closed: Linux reports a reset that follows the end of file
    only in SO_ERROR."""
    connection.sock.settimeout(scaled(10))
    try:
        chunk = connection.buffer or connection.sock.recv(65536)
    except ConnectionResetError as reset:
        raise AssertionError("expected end of file, got a reset: %s" % reset) from None
    if chunk:
        raise AssertionError("expected end of file, got %r" % chunk[:200])
    error = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise AssertionError("end of file, then a reset (SO_ERROR: %s)" % os.strerror(error))


def unacknowledged(sock):
    """Bytes sent on sock that the peer's kernel has not acknowledged yet (Linux SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def newcomer_while_stopped(test, server, payload=b"", reset=False):
    """Connects a newcomer while the server is stopped (SIGSTOP) - the kernel completes the
    handshake - sends payload, waits until the server's kernel holds all of it, and resets
    the connection if asked: what the acceptor finds when it runs again. Returns the
    connection and its peer text ("127.0.0.1:PORT")."""
    if under_emulator() or not hasattr(signal, "SIGSTOP"):
        test.skipTest("stops the server with SIGSTOP: POSIX native builds only")
    os.kill(server.pid, signal.SIGSTOP)
    try:
        newcomer = test.connect(server)
        peer = peer_of(newcomer)
        if payload:
            newcomer.send(payload)
            if sys.platform.startswith("linux"):
                wait_until(lambda: unacknowledged(newcomer.sock) == 0, 10,
                           "the server's kernel to take all %d bytes" % len(payload))
        if reset:
            newcomer.reset()
    finally:
        os.kill(server.pid, signal.SIGCONT)
    return newcomer, peer


def fill_the_pool(test, server):
    """With a one-worker server: one client served, QUEUE_SIZE queued; the next is turned
    away. Returns the served client."""
    held = occupy_workers(test, server, 1)[0]
    queued = [test.connect(server) for _ in range(QUEUE_SIZE)]
    wait_for_line(server, CONNECTED, queued)
    return held


def serve_in_waves(test, server, total, wave, during_wave=None):
    """Serves total clients, wave at a time: a wave connects and sends a line each, then
    each client reads its answer and leaves, first come first served. A wave no larger than
    the queue always fits in it, so no client may be turned away."""
    for start in range(0, total, wave):
        connections = [test.connect(server) for _ in range(wave)]
        for number, connection in enumerate(connections):
            connection.send_line("client %d" % (start + number))
        if during_wave:
            during_wave()
        for number, connection in enumerate(connections):
            connection.expect_line("client %d" % (start + number))  # the others wait their turn
            connection.close()


class PoolTests(LabTestCase):
    """Any number of clients, a fixed number of threads; every client accepted is served."""
    LESSON = LESSON

    def test_two_hundred_clients_in_waves_are_all_served(self):
        server = self.start_server()
        serve_in_waves(self, server, 200, 10)
        wait_until(lambda: len(lines_matching(server, DISCONNECTED % ANY_PEER)) >= 200, 20.0,
                   "200 \"client ... disconnected\" lines")
        for pattern in (CONNECTED, SERVES, DISCONNECTED):
            self.assertEqual(len(lines_matching(server, pattern % ANY_PEER)), 200, pattern)
        self.assertEqual(lines_matching(server, TURNED_AWAY % ANY_PEER), [])
        story = {}  # each client's lines, in the order they were printed
        for line in list(server.stdout.lines):
            for kind in (CONNECTED, SERVES, DISCONNECTED):
                match = re.match(kind % "(%s)" % ANY_PEER, line)
                if match:
                    story.setdefault(match.group(1), []).append(kind)
        in_order = [CONNECTED, SERVES, DISCONNECTED]
        wrong = [peer for peer, kinds in story.items()
                 if kinds != in_order * (len(kinds) // 3)]  # a port may be used twice
        self.assertEqual(wrong, [], "each client's lines: connected, serves, disconnected")

    def test_two_hundred_newcomers_while_every_worker_is_busy_are_queued_or_turned_away(self):
        server = self.start_server()
        busy = occupy_workers(self, server, DEFAULT_WORKERS)
        newcomers = [self.connect(server) for _ in range(200)]
        wait_until(lambda: len(lines_matching(server, CONNECTED % ANY_PEER))
                   + len(lines_matching(server, TURNED_AWAY % ANY_PEER))
                   >= DEFAULT_WORKERS + 200, 30.0, "the server to accept all 200 newcomers")
        if linux_proc_available():
            self.assertLessEqual(thread_count(server.pid), threads_allowed(DEFAULT_WORKERS))
        queued = [c for c in newcomers
                  if lines_matching(server, CONNECTED % re.escape(peer_of(c)))]
        turned_away = [c for c in newcomers if c not in queued]
        self.assertEqual(len(queued), QUEUE_SIZE, "the queue holds %d clients" % QUEUE_SIZE)
        for connection in turned_away:
            connection.expect_line(BUSY_REPLY)
            connection.expect_eof()
        for connection in busy:
            connection.close()  # four workers come free: the queue drains
        for number, connection in enumerate(queued):
            connection.send_line("queued %d" % number)
            connection.expect_line("queued %d" % number)
            connection.close()
        self.assertEqual(len(lines_matching(server, TURNED_AWAY % ANY_PEER)), 200 - QUEUE_SIZE)


class QueueTests(LabTestCase):
    """A full queue turns the newcomer away, at once and politely; serving goes on."""
    LESSON = LESSON

    def test_a_full_queue_turns_the_next_client_away_and_serving_goes_on(self):
        server = self.start_server(["0", "127.0.0.1", "2"])
        silent = occupy_workers(self, server, 2)
        queued = [self.connect(server) for _ in range(QUEUE_SIZE)]
        wait_for_line(server, CONNECTED, queued)
        extra = self.connect(server)
        extra.expect_line(BUSY_REPLY)
        extra.expect_eof()
        wait_for_line(server, TURNED_AWAY, [extra])
        silent[0].send_line("held, and still served")  # the workers go on meanwhile
        silent[0].expect_line("held, and still served")
        queued[0].send_line("first in the queue")
        queued[0].expect_silence(0.5)  # no worker free yet
        silent[0].close()  # a worker comes free and takes the oldest waiting client
        queued[0].expect_line("first in the queue")
        newcomer = self.connect(server)  # the queue has a place again
        wait_for_line(server, CONNECTED, [newcomer])
        silent[1].close()
        for number, connection in enumerate(queued[1:] + [newcomer]):
            connection.send_line("in turn %d" % number)
            connection.expect_line("in turn %d" % number)
            connection.close()  # its worker takes the next one
        queued[0].close()
        self.assertEqual(len(lines_matching(server, TURNED_AWAY % ANY_PEER)), 1)
        self.assertTrue(server.running())

    def test_a_newcomer_that_sent_a_line_is_turned_away_with_end_of_file_not_a_reset(self):
        # close() with unread input sends a reset. The server is stopped while the newcomer
        # connects and sends (the kernel completes the handshake), so the line is surely
        # there before accept(): sent later, it could arrive after the server read it away.
        if under_emulator() or not hasattr(signal, "SIGSTOP"):
            self.skipTest("stops the server with SIGSTOP: POSIX native builds only")
        server = self.start_server(["0", "127.0.0.1", "1"])
        occupy_workers(self, server, 1)
        queued = [self.connect(server) for _ in range(QUEUE_SIZE)]
        wait_for_line(server, CONNECTED, queued)
        os.kill(server.pid, signal.SIGSTOP)
        try:
            newcomer = self.connect(server)
            newcomer.send_line("let me in")
        finally:
            os.kill(server.pid, signal.SIGCONT)
        newcomer.expect_line(BUSY_REPLY)
        wait_for_line(server, TURNED_AWAY, [newcomer])  # printed after the close
        expect_clean_eof(newcomer)
        self.assertTrue(server.running())

    def test_up_to_16_kib_is_read_away_and_a_reset_for_more_comes_after_the_end_of_file(self):
        # What a newcomer sent before it was turned away: 16 KiB exactly is read away, so the
        # close sends no reset. 1,000 bytes more are left unread and the close resets - but
        # only after the busy line and the end of file, which shutdown() sent first.
        server = self.start_server(["0", "127.0.0.1", "1"])
        held = fill_the_pool(self, server)
        exactly, _ = newcomer_while_stopped(self, server, b"x" * READ_AWAY)
        exactly.expect_line(BUSY_REPLY)
        wait_for_line(server, TURNED_AWAY, [exactly])
        expect_clean_eof(exactly)
        beyond, _ = newcomer_while_stopped(self, server, b"x" * (READ_AWAY + 1000))
        beyond.expect_line(BUSY_REPLY)
        wait_for_line(server, TURNED_AWAY, [beyond])
        beyond.sock.settimeout(scaled(10))
        try:
            chunk = beyond.buffer or beyond.sock.recv(65536)
        except ConnectionResetError as reset:
            raise AssertionError("after the busy line a reset, no end of file before it: %s"
                                 % reset) from None
        self.assertEqual(chunk, b"", "the end of file after the busy line")
        if linux_proc_available():  # Linux keeps the reset after an end of file in SO_ERROR
            error = wait_until(lambda: beyond.sock.getsockopt(socket.SOL_SOCKET,
                                                              socket.SO_ERROR), 2,
                               "the reset for the bytes beyond %d (none was read)" % READ_AWAY)
            self.assertIn(error, (errno.EPIPE, errno.ECONNRESET), os.strerror(error))
        held.send_line("still served")
        held.expect_line("still served")

    def test_a_newcomer_that_resets_before_it_is_turned_away_is_warned_about(self):
        # The send() of the busy line fails: the server says so, with the call and the
        # newcomer's address, and goes on.
        server = self.start_server(["0", "127.0.0.1", "1"])
        held = fill_the_pool(self, server)
        _, peer = newcomer_while_stopped(self, server, reset=True)
        reason = "Connection reset by peer" if linux_proc_available() else r"\w"
        server.stderr.expect(r"^server: send %s: %s" % (re.escape(peer), reason),
                             what="the server's stderr")
        wait_until(lambda: lines_matching(server, TURNED_AWAY % re.escape(peer)), 10,
                   "the reset newcomer to be turned away")
        held.send_line("still served")
        held.expect_line("still served")
        self.assertTrue(server.running())


class LimitTests(LabTestCase):
    """The pool's weakness: a worker stays with its client until the client leaves."""
    LESSON = LESSON

    def test_as_many_silent_clients_as_workers_stall_the_next_until_one_leaves(self):
        server = self.start_server()  # the default, four workers
        silent = [self.connect(server) for _ in range(DEFAULT_WORKERS)]
        stalled = self.connect(server)
        stalled.send_line("anybody there?")
        stalled.expect_silence(1.0)  # four silent clients hold all four workers
        silent[2].close()  # any one of them leaving frees its worker
        stalled.expect_line("anybody there?")

    def test_a_client_holds_its_worker_until_it_leaves_not_until_its_line_is_answered(self):
        server = self.start_server(["0", "127.0.0.1", "1"])
        holder = self.connect(server)
        holder.send_line("one")
        holder.expect_line("one")
        waiting = self.connect(server)
        waiting.send_line("two")
        waiting.expect_silence(0.5)
        holder.send_line("three")  # an answered line does not give the worker back
        holder.expect_line("three")
        waiting.expect_silence(0.5)
        holder.close()
        waiting.expect_line("two")


class HostileClientTests(LabTestCase):
    """Nothing a client does ends the server, stalls the other workers or keeps a worker
    after the client has gone."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.server = self.start_server()  # four workers
        self.bystander = self.connect(self.server)  # holds one worker through it all
        self.bystander.send_line("before")
        self.bystander.expect_line("before")

    def assert_healthy(self, free_workers=DEFAULT_WORKERS - 1):
        """The server runs, the bystander is served, and free_workers newcomers connected at
        the same time are all served: no worker was lost to the hostile client."""
        self.assertTrue(self.server.running(), "stderr:\n%s" % self.server.stderr.text())
        self.bystander.send_line("still here")
        self.bystander.expect_line("still here")
        newcomers = [self.connect(self.server) for _ in range(free_workers)]
        for number, newcomer in enumerate(newcomers):
            newcomer.send_line("newcomer %d" % number)
        for number, newcomer in enumerate(newcomers):
            newcomer.expect_line("newcomer %d" % number)
        for newcomer in newcomers:
            newcomer.close()

    def test_a_storm_of_two_hundred_connect_and_close(self):
        for number in range(200):
            connection = self.connect(self.server)
            if number % 2:
                connection.reset()
            else:
                connection.close()

        def accounted():  # each left, was turned away, or (Windows) failed in accept()
            return (len(lines_matching(self.server, DISCONNECTED % ANY_PEER))
                    + len(lines_matching(self.server, TURNED_AWAY % ANY_PEER))
                    + sum(line.startswith("server: accept: ")
                          for line in list(self.server.stderr.lines)))
        wait_until(lambda: accounted() >= 200, 30.0, "every client of the storm to be gone")
        self.assert_healthy()

    def test_reset_in_the_middle_of_a_line(self):
        connection = self.connect(self.server)
        connection.send_line("served first")  # so a worker is surely reading it
        connection.expect_line("served first")
        connection.send(b"half a li")
        peer = peer_of(connection)
        connection.reset()
        if not under_emulator():  # Wine's recv() may report the reset as a plain EOF
            self.server.stderr.expect(r"^server: recv %s: \w" % re.escape(peer),
                                      what="the server's stderr")
        wait_until(lambda: lines_matching(self.server, DISCONNECTED % re.escape(peer)), 20.0,
                   "the reset client to be closed")
        self.assert_healthy()

    def test_half_a_line_then_silence(self):
        connection = self.connect(self.server)
        connection.send(b"half a li")
        wait_for_line(self.server, SERVES, [connection])
        self.assert_healthy(free_workers=DEFAULT_WORKERS - 2)  # it holds one worker
        connection.send(b"ne\n")
        connection.expect_line("half a line")

    def test_half_a_line_then_close(self):
        connection = self.connect(self.server)
        connection.send(b"no newline")
        connection.close()
        self.assert_healthy()

    def test_an_over_long_line_is_answered_and_the_client_served_on(self):
        connection = self.connect(self.server)
        connection.send(b"q" * 5000 + b"\nafter\n")
        connection.expect_line(TOO_LONG_REPLY)
        connection.expect_line("after")
        connection.close()
        self.assert_healthy()

    def test_a_line_without_end_is_cut_off_at_the_limit_not_stored(self):
        connection = self.connect(self.server)
        connection.send(b"m" * (LINE_MAX * 5))
        connection.expect_line(TOO_LONG_REPLY)  # before any "\n": the line is not stored
        connection.send(b"m" * 1000 + b"\nafter\n")
        connection.expect_line("after")
        connection.close()
        self.assert_healthy()

    def test_a_client_that_never_reads_then_resets(self):
        connection = self.connect(self.server)
        self.assertGreater(fill_until_blocked(connection), 10000)
        self.assert_healthy(free_workers=DEFAULT_WORKERS - 2)  # its worker is stuck in send()
        connection.reset()
        self.assert_healthy()

    def test_answers_to_a_client_that_has_gone_do_not_kill_the_server(self):
        # It closes before reading: the first answer draws an RST, the next send() would
        # raise SIGPIPE and end the whole server, were SIGPIPE not ignored.
        connection = self.connect(self.server)
        connection.send(b"an answer nobody reads\n" * 200)
        peer = peer_of(connection)
        connection.close()
        wait_until(lambda: lines_matching(self.server, DISCONNECTED % re.escape(peer)), 20.0,
                   "the departed client to be closed")
        self.assert_healthy()


class OneWorkerTests(HostileClientChecks, LabTestCase):
    """With one worker the pool serves one client at a time, like lesson 03's server, and
    the hostile-client checks written for such servers apply unchanged."""
    LESSON = LESSON

    def start_server(self, args=("0", "127.0.0.1", "1"), **options):
        return super().start_server(args, **options)


class ResourceTests(AcceptBackoffCheck, LabTestCase):
    """On Linux, /proc/PID/task lists the server's threads: the workers and main, no more."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.require_linux_proc()

    def test_the_workers_start_with_the_server(self):
        for args, workers in ((["0"], DEFAULT_WORKERS), (["0", "127.0.0.1", "3"], 3)):
            server = self.start_server(args)
            self.assertIn(thread_count(server.pid),
                          range(workers + 1, threads_allowed(workers) + 1),
                          "%d workers and the main thread, before any client" % workers)

    def test_threads_never_exceed_the_workers_and_main_with_two_hundred_clients(self):
        server = self.start_server()  # the default, four workers
        warm_up = self.connect(server)  # a server that starts threads lazily has them now
        warm_up.send_line("warm up")
        warm_up.expect_line("warm up")
        warm_up.close()
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(thread_count(server.pid))
                stop.wait(0.002)  # pace the reading of /proc
        self.in_thread(sample)
        try:
            serve_in_waves(self, server, 200, 10,
                           during_wave=lambda: samples.append(thread_count(server.pid)))
        finally:
            stop.set()
            self.join_threads()
        self.assertLessEqual(max(samples), threads_allowed(DEFAULT_WORKERS),
                             "threads seen while 200 clients came in waves of 10: at most %d, "
                             "in %d readings" % (max(samples), len(samples)))

    def test_clients_turned_away_or_hostile_leave_no_descriptor_and_no_thread_behind(self):
        server = self.start_server()
        threads, descriptors = thread_count(server.pid), open_descriptor_count(server.pid)
        busy = occupy_workers(self, server, DEFAULT_WORKERS)
        crowd = [self.connect(server) for _ in range(QUEUE_SIZE + 20)]  # 20 turned away
        wait_until(lambda: len(lines_matching(server, TURNED_AWAY % ANY_PEER)) >= 20, 20.0,
                   "20 clients turned away")
        for connection in busy + crowd:
            connection.close()
        for number in range(100):  # then the hostile ones
            connection = self.connect(server)
            if number % 4 == 0:
                connection.reset()
            elif number % 4 == 1:
                connection.send(b"half a li")
                connection.reset()
            elif number % 4 == 2:
                connection.send(b"q" * 5000 + b"\nno reader\n" * 100)
                connection.close()
            else:
                connection.close()
        # Every one of the 140 clients has left or been turned away; then count.
        wait_until(lambda: len(lines_matching(server, DISCONNECTED % ANY_PEER))
                   + len(lines_matching(server, TURNED_AWAY % ANY_PEER)) >= 140, 20.0,
                   "every client to be gone")
        wait_until(lambda: open_descriptor_count(server.pid) == descriptors, 20.0,
                   "the server's descriptors to come back to %d (now %d)"
                   % (descriptors, open_descriptor_count(server.pid)))
        self.assertEqual(thread_count(server.pid), threads)
        last = self.connect(server)
        last.send_line("served after it all")
        last.expect_line("served after it all")


class StartTests(LabTestCase):
    """The workers start before the server listens; if one cannot start, it stops."""
    LESSON = LESSON

    def test_a_worker_that_cannot_start_is_named_and_the_server_exits_1_without_listening(self):
        # 1,000 workers with 8 MiB of stack each need 8 GB of address space: under
        # `ulimit -v` 256 MiB pthread_create() fails after a few dozen. The server must say
        # which worker it could not start and exit, not listen with fewer than it was told.
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer reserves more address space than the limit allows")
        server = self.start_client(path="/bin/sh", args=[
            "-c", 'ulimit -s 8192 && ulimit -v 262144 && exec "$0" 0 127.0.0.1 1000',
            self.program("server")])
        wait_until(lambda: not server.running() or server.stdout.lines, 10,
                   "the server to exit, or to listen")
        self.assertEqual(server.stdout.lines, [], "no \"listening on\" with workers missing")
        self.assertEqual(server.wait(), 1, "the exit status")
        self.assertEqual(len(server.stderr.lines), 1, server.stderr.lines)
        self.assertRegex(server.stderr.lines[0], r"^server: cannot start worker \d+ of 1000$")


class ClientTests(EchoClientChecks, LabTestCase):
    """The client is lesson 06's: it says where it connected, then prints each answer."""
    LESSON = LESSON


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON

    def test_server_rejects_a_bad_number_of_workers(self):
        for value in ("abc", "0", "-2", "1001", "4x"):
            self.check_usage_error("server", ["0", "127.0.0.1", value], value)

    def test_help_names_the_workers_their_default_and_the_queue(self):
        status, out, err = self.run_program(self.program("server"), ["--help"])
        text = " ".join(out)
        self.assertEqual(status, 0)
        self.assertIn("[PORT [BIND-ADDRESS [WORKERS]]]", out[0])
        self.assertIn("WORKERS threads (default %d" % DEFAULT_WORKERS, text)
        self.assertIn("up to %d more clients wait" % QUEUE_SIZE, text)
        self.assertIn('"%s"' % BUSY_REPLY, text)


# Each must fail against the wrong server. They start the server with its defaults only,
# so that a server without a WORKERS argument (lesson 06's) starts too.
THREAD_PER_CLIENT_FAILS = [
    ("ResourceTests", "test_threads_never_exceed_the_workers_and_main_with_two_hundred_clients"),
    ("LimitTests", "test_as_many_silent_clients_as_workers_stall_the_next_until_one_leaves"),
]
UNBOUNDED_QUEUE_FAILS = [
    ("QueueTests", "test_a_full_queue_turns_the_next_client_away_and_serving_goes_on"),
    ("PoolTests",
     "test_two_hundred_newcomers_while_every_worker_is_busy_are_queued_or_turned_away"),
]


class WrongServerTests(MutationChecks):
    """The tests above fail on servers that get this lesson's ideas wrong."""

    def assert_tests_fail(self, tests, server):
        self.assert_suite_fails(["test_lesson07.%s.%s" % test for test in tests],
                                [name for _, name in tests], server=server)

    def test_fails_lesson06s_server_which_starts_a_thread_per_client(self):
        self.assert_tests_fail(THREAD_PER_CLIENT_FAILS,
                               program_path("06-thread-per-client", "server", own=False))

    def test_fails_a_pool_whose_queue_has_no_bound(self):
        self.assert_tests_fail(UNBOUNDED_QUEUE_FAILS, peer_path("broken_unbounded_queue.py"))
