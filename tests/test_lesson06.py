"""Lesson 06 - thread per client: the claims of lessons/06-thread-per-client/README.md."""
import re
import socket

from labtest import (AcceptBackoffCheck, CommandLineChecks, EchoClientChecks, LabTestCase, LINE_MAX,
                     MutationChecks, QuietServerCheck, TOO_LONG_REPLY, fill_until_blocked,
                     open_descriptor_count, program_path, rss_bytes, sanitizer, thread_count,
                     under_emulator, wait_until)

try:
    import resource  # POSIX only: the thread-start failure test limits the server's memory
except ImportError:
    resource = None

LESSON = "06-thread-per-client"
CLIENTS = 100
CONNECTED = re.compile(r"^client connected from (127\.0\.0\.1:\d+) \((\d+) connected\)$")
DISCONNECTED = re.compile(r"^client (127\.0\.0\.1:\d+) disconnected \((\d+) connected\)$")
THREAD_REFUSED = r"^server: cannot start a thread for client 127\.0\.0\.1:%d: closing it$"


def connect_many(test, server, count):
    """Opens count connections and keeps them all open; the server accepts them in order."""
    return [test.connect(server) for _ in range(count)]


def echo_rounds(connections, rounds=3):
    """Each round sends one line on every connection, then reads every answer, last
    connection first: all clients wait for answers at the same time, and each line names
    its client, so an answer sent on the wrong socket is caught."""
    for round_number in range(rounds):
        for number, connection in enumerate(connections):
            connection.send_line("client %d, line %d" % (number, round_number))
        for number in reversed(range(len(connections))):
            connections[number].expect_line("client %d, line %d" % (number, round_number))


def events(server):
    """The server's connect and disconnect lines so far, as (kind, address, count)."""
    found = []
    for line in list(server.stdout.lines):
        for kind, pattern in (("connected", CONNECTED), ("disconnected", DISCONNECTED)):
            match = pattern.match(line)
            if match:
                found.append((kind, match.group(1), int(match.group(2))))
    return found


def departures(server):
    """How many "client ... disconnected" lines the server has printed."""
    return sum(kind == "disconnected" for kind, _, _ in events(server))


def accept_failures(server):
    """How many failed accept() calls the server has reported on stderr. (Winsock's accept
    fails for a connection reset before it was accepted; Linux's returns it.)"""
    return sum(line.startswith("server: accept: ") for line in list(server.stderr.lines))


def wait_for_departures(server, count, timeout=20.0):
    """Waits until the server has printed count "disconnected" lines."""
    wait_until(lambda: departures(server) >= count, timeout,
               "%d \"client ... disconnected\" lines" % count)


class ConcurrencyTests(LabTestCase):
    """Every client is served at once: nobody waits for another client to leave.

    OneAtATimeServerTests proves that lesson 03's iterative server fails each of these."""
    LESSON = LESSON

    def test_a_hundred_clients_connected_at_once_are_all_served(self):
        server = self.start_server()
        connections = connect_many(self, server, CLIENTS)
        echo_rounds(connections)
        for connection in connections:
            connection.close()
        self.assertTrue(server.running())

    def test_a_silent_client_and_half_a_line_stall_nobody(self):
        server = self.start_server()
        silent = self.connect(server)  # connected, sends nothing
        half = self.connect(server)
        half.send(b"half a li")  # and then nothing, for now
        others = connect_many(self, server, 5)
        echo_rounds(others)
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(server.port)], b"one\ntwo\n")
        self.assertEqual((status, out[1:]), (0, ["one", "two"]), "stderr: %s" % err)
        silent.expect_silence(0.3)  # the server speaks only when spoken to
        half.expect_silence(0.1)  # and answers only whole lines
        half.send(b"ne\n")
        half.expect_line("half a line")
        silent.send_line("finally")
        silent.expect_line("finally")

    def test_a_client_that_never_reads_stalls_nobody(self):
        server = self.start_server()
        blocked = self.connect(server)
        self.assertGreater(fill_until_blocked(blocked), 10000)
        echo_rounds(connect_many(self, server, 5))  # its thread is stuck in send(): not ours
        blocked.reset()
        echo_rounds(connect_many(self, server, 2))


class ClientTests(EchoClientChecks, LabTestCase):
    """The client is lesson 03's: it says where it connected, then prints each answer."""
    LESSON = LESSON


class ClientCountTests(LabTestCase):
    """The " (N connected)" the server appends is the true number of connected clients."""
    LESSON = LESSON

    def test_counts_rise_to_a_hundred_and_fall_back_to_zero(self):
        server = self.start_server()
        connections = connect_many(self, server, CLIENTS)
        echo_rounds(connections, rounds=1)  # each answer means its thread has started
        for connection in connections:
            connection.close()
        wait_for_departures(server, CLIENTS)
        found = events(server)
        self.assertEqual([count for _, _, count in found],
                         list(range(1, CLIENTS + 1)) + list(range(CLIENTS - 1, -1, -1)))
        self.assertEqual(sorted(address for kind, address, _ in found if kind == "connected"),
                         sorted(address for kind, address, _ in found if kind == "disconnected"),
                         "every client that arrived left exactly once")

    def test_a_hundred_threads_printing_at_once_write_whole_lines(self):
        server = self.start_server()
        connections = connect_many(self, server, CLIENTS)
        echo_rounds(connections, rounds=1)
        for connection in connections:
            connection.send(b"half a li")
        for connection in connections:
            connection.reset()  # each thread warns on stderr and says goodbye on stdout
        wait_for_departures(server, CLIENTS)
        lines = list(server.stdout.lines)[1:]  # after "listening on"
        mixed = [line for line in lines if not (CONNECTED.match(line)
                                                or DISCONNECTED.match(line))]
        self.assertEqual((mixed, len(lines)), ([], 2 * CLIENTS), "stdout lines not whole")
        if not under_emulator():  # Wine's recv() often reports such a reset as a plain EOF
            wait_until(lambda: len(server.stderr.lines) >= CLIENTS, 10.0,
                       "a warning per client")
        warned = [re.match(r"^server: recv (127\.0\.0\.1:\d+): \w.*$", line)
                  for line in server.stderr.lines]
        self.assertTrue(all(warned), "stderr lines not whole:\n%s" % server.stderr.text())
        if not under_emulator():
            self.assertEqual(sorted(match.group(1) for match in warned),
                             sorted(address for kind, address, _ in events(server)
                                    if kind == "connected"), "one warning for each client")


def assert_count_history(test, found, arrivals):
    """Checks that counts step by one from 0, never go negative, and end at 0."""
    count = 0
    for kind, address, printed in found:
        count += 1 if kind == "connected" else -1
        test.assertEqual(printed, count, "count printed for %s %s" % (address, kind))
    test.assertEqual(count, 0, "everybody left")
    test.assertEqual(sum(kind == "connected" for kind, _, _ in found), arrivals)


class HostileClientTests(LabTestCase):
    """Nothing one client does ends the server or stalls the other clients."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.bystander = self.connect(self.server)  # connected through it all
        self.bystander.send_line("before")
        self.bystander.expect_line("before")

    def assert_healthy(self):
        """The server runs, the bystander is still served, and so is a newcomer."""
        self.assertTrue(self.server.running(), "stderr:\n%s" % self.server.stderr.text())
        self.bystander.send_line("still here")
        self.bystander.expect_line("still here")
        newcomer = self.connect(self.server)
        newcomer.send_line("next")
        newcomer.expect_line("next")
        newcomer.close()

    def test_a_line_without_end_is_cut_off_at_the_limit_not_stored(self):
        connection = self.connect(self.server)
        connection.send(b"m" * (LINE_MAX * 5))
        connection.expect_line(TOO_LONG_REPLY)
        connection.send(b"m" * 1000 + b"\nafter\n")
        connection.expect_line("after")
        self.assert_healthy()

    def test_reset_in_the_middle_of_a_line(self):
        connection = self.connect(self.server)
        connection.send_line("served first")  # so its thread is surely reading
        connection.expect_line("served first")
        connection.send(b"half a li")
        port = connection.sock.getsockname()[1]
        connection.reset()
        if not under_emulator():  # Wine's recv() may report the reset as a plain EOF
            self.server.stderr.expect(r"^server: recv 127\.0\.0\.1:%d: \w" % port,
                                      what="the server's stderr")  # the thread says why
        self.server.stdout.expect(r"^client 127\.0\.0\.1:%d disconnected" % port)
        self.assert_healthy()

    def test_half_a_line_then_close(self):
        connection = self.connect(self.server)
        connection.send(b"no newline")
        connection.close()
        self.assert_healthy()

    def test_a_storm_of_two_hundred_connect_and_close(self):
        for number in range(200):
            connection = self.connect(self.server)
            if number % 2:
                connection.reset()
            else:
                connection.close()
        # Each is accepted and leaves, or (Windows) its accept() fails: 200 events in all.
        wait_until(lambda: departures(self.server) + accept_failures(self.server) >= 200,
                   30.0, "every client of the storm to be accepted and gone")
        self.assert_healthy()
        self.bystander.close()
        arrivals = 202 - accept_failures(self.server)  # with the bystander and newcomer
        wait_for_departures(self.server, arrivals, timeout=30.0)
        assert_count_history(self, events(self.server), arrivals)

    def test_a_client_that_never_reads_then_resets(self):
        connection = self.connect(self.server)
        fill_until_blocked(connection)
        self.assert_healthy()  # while its thread is stuck in send()
        connection.reset()
        self.assert_healthy()

    def test_an_over_long_line_is_answered_and_the_client_served_on(self):
        connection = self.connect(self.server)
        connection.send(b"q" * 5000 + b"\nafter\n")
        connection.expect_line(TOO_LONG_REPLY)
        connection.expect_line("after")
        self.assert_healthy()

    def test_answers_to_a_client_that_has_gone_do_not_kill_the_server(self):
        # It closes before reading: the first answer draws an RST, the next send() would
        # raise SIGPIPE and end every thread, were SIGPIPE not ignored.
        connection = self.connect(self.server)
        connection.send(b"an answer nobody reads\n" * 200)
        connection.close()
        wait_for_departures(self.server, 1)
        self.assert_healthy()


class ThreadTests(LabTestCase):
    """On Linux, /proc/PID/task lists the server's threads: one per client, no more."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.require_linux_proc()
        self.server = self.start_server()
        # A first client, come and gone, before the baseline: ThreadSanitizer starts a
        # helper thread of its own at the first pthread_create().
        warm_up = self.connect(self.server)
        warm_up.send_line("warm up")
        warm_up.expect_line("warm up")
        threads_with_one = thread_count(self.server.pid)
        descriptors_with_one = open_descriptor_count(self.server.pid)
        warm_up.close()
        self.threads = threads_with_one - 1
        self.descriptors = descriptors_with_one - 1
        self.wait_for_threads(self.threads, "the warm-up client's thread to end")

    def wait_for_threads(self, expected, what, timeout=20.0):
        try:
            wait_until(lambda: thread_count(self.server.pid) == expected, timeout, what)
        except AssertionError as failure:
            raise AssertionError("%s: expected %d threads, the server has %d"
                                 % (failure, expected, thread_count(self.server.pid))) from None

    def assert_back_to_baseline(self):
        self.wait_for_threads(self.threads, "every client thread to end")
        try:
            wait_until(lambda: open_descriptor_count(self.server.pid) == self.descriptors,
                       20.0, "the server to close every client socket")
        except AssertionError as failure:
            raise AssertionError("%s: expected %d descriptors, the server has %d"
                                 % (failure, self.descriptors,
                                    open_descriptor_count(self.server.pid))) from None

    def test_threads_follow_the_clients_up_and_back_down(self):
        connections = connect_many(self, self.server, CLIENTS)
        echo_rounds(connections, rounds=1)
        self.wait_for_threads(self.threads + CLIENTS, "one thread per connected client")
        for connection in connections[:CLIENTS // 2]:
            connection.close()
        self.wait_for_threads(self.threads + CLIENTS // 2, "half of them to end")
        for connection in connections[CLIENTS // 2:]:
            connection.close()
        self.assert_back_to_baseline()

    def test_hostile_clients_leave_no_thread_and_no_socket_behind(self):
        resetting = self.connect(self.server)
        resetting.send(b"half a li")
        resetting.reset()
        silent = self.connect(self.server)
        self.connect(self.server).close()
        blocked = self.connect(self.server)
        fill_until_blocked(blocked)
        self.wait_for_threads(self.threads + 2, "threads for the silent and the blocked client")
        silent.close()
        blocked.reset()
        for _ in range(200):
            self.connect(self.server).close()
        self.assert_back_to_baseline()

    def serve_one_after_another(self, count):
        for number in range(count):
            connection = self.connect(self.server)
            connection.send_line("client %d" % number)
            connection.expect_line("client %d" % number)
            connection.close()
        self.assert_back_to_baseline()

    def test_clients_one_after_another_leave_no_memory_and_no_stack_behind(self):
        # Each thread is detached (its 8 MiB stack goes back, or to glibc's cache, when it
        # returns) and frees its client's block. A thread never detached keeps its stack
        # mapped after it has ended: /proc/PID/task no longer lists it, VmSize does.
        if sanitizer():
            self.skipTest("sanitizers keep freed memory in quarantine: RSS says nothing")
        self.serve_one_after_another(300)  # the allocator and the stack cache settle
        pid = self.server.pid
        size, resident = address_space_size(pid), rss_bytes(pid)
        self.serve_one_after_another(3000)
        # glibc may reserve another 64 MiB malloc arena for a new thread now and then; 3,000
        # stacks never given back would be 3,000 x 8 MiB, 23 GiB.
        grown = address_space_size(pid) - size
        self.assertLess(grown, 2**30, "the address space grew by %d MiB over 3,000 clients: "
                        "stacks of threads never detached?" % (grown >> 20))
        grown = rss_bytes(pid) - resident
        self.assertLess(grown, 128 * 1024, "resident memory grew by %d KB over 3,000 clients "
                        "(a client's 80-byte block kept each time: 240 KB)" % (grown >> 10))

    def test_clients_whose_thread_cannot_start_leave_nothing_behind(self):
        # A server of its own that never started a thread (so glibc has no stack cached to
        # reuse), given 4 MiB more address space: room for its heap, none for an 8 MiB stack.
        # Every client is closed at once; the block made for it must be freed too, or 3,000
        # of them keep 240 KB.
        if resource is None or not hasattr(resource, "prlimit"):
            self.skipTest("needs resource.prlimit (Linux)")
        if sanitizer():
            self.skipTest("sanitizers reserve terabytes of address space: no limit fits")
        server = self.start_server()
        pid = server.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_AS)
        resource.prlimit(pid, resource.RLIMIT_AS, (address_space_size(pid) + 4 * 2**20, hard))

        def turned_away(count):
            for _ in range(count):
                connection = self.connect(server)
                connection.send_line("anybody?")
                self.assertFalse(answered(connection), "a client was served without a thread")
                connection.close()
        turned_away(500)  # the allocator settles
        descriptors, resident = open_descriptor_count(pid), rss_bytes(pid)
        turned_away(3000)
        grown = rss_bytes(pid) - resident
        self.assertLess(grown, 128 * 1024, "resident memory grew by %d KB over 3,000 clients "
                        "turned away" % (grown >> 10))
        self.assertEqual(open_descriptor_count(pid), descriptors, "a socket kept per client")
        server.stderr.expect(r"^server: cannot start a thread for client ", what="the refusals")

    def test_a_thread_that_cannot_start_turns_away_one_client_only(self):
        # Limits the server's address space to room for about two more 8 MiB thread stacks:
        # pthread_create() then fails for lack of memory, as it would with too many threads.
        if resource is None or not hasattr(resource, "prlimit"):
            self.skipTest("needs resource.prlimit (Linux)")
        if sanitizer():
            self.skipTest("sanitizers reserve terabytes of address space: no limit fits")
        size = address_space_size(self.server.pid)
        soft, hard = resource.prlimit(self.server.pid, resource.RLIMIT_AS)
        resource.prlimit(self.server.pid, resource.RLIMIT_AS, (size + 20 * 2**20, hard))
        served = []
        refused = None
        for number in range(CLIENTS):  # 3 with 8 MiB stacks; more if `ulimit -s` is less
            connection = self.connect(self.server)
            connection.send_line("client %d" % number)
            if not answered(connection):
                refused = connection
                break
            served.append(connection)
        self.assertIsNotNone(refused, "a client should have been turned away")
        self.assertTrue(served, "the clients before it should have been served")
        port = refused.sock.getsockname()[1]
        self.server.stderr.expect(THREAD_REFUSED % port, what="the server's stderr")
        self.server.stdout.expect(r"^client 127\.0\.0\.1:%d disconnected \(%d connected\)$"
                                  % (port, len(served)))
        echo_rounds(served, rounds=1)  # the others are served on
        resource.prlimit(self.server.pid, resource.RLIMIT_AS, (soft, hard))
        newcomer = self.connect(self.server)  # and with memory back, newcomers are too
        newcomer.send_line("room again")
        newcomer.expect_line("room again")
        for connection in served + [newcomer]:
            connection.close()
        self.assert_back_to_baseline()


class AcceptBackoffTests(AcceptBackoffCheck, LabTestCase):
    """Out of descriptors, the accept loop pauses between tries (lab_accept()) instead of
    ending as lesson 03's does, or spinning: the threads give descriptors back as their
    clients leave, and the clients already connected are served meanwhile."""
    LESSON = LESSON


def address_space_size(pid):
    """VmSize of a process in bytes, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/%d/status" % pid)


def answered(connection):
    """True if the line just sent comes back; False if the server closed the connection."""
    try:
        line = connection.recv_line()
    except ConnectionResetError:
        return False
    except AssertionError as failure:
        if "closed the connection" in str(failure):
            return False
        raise
    return line.startswith(b"client ")


class OneAtATimeServerTests(MutationChecks):
    """A server that serves one client at a time fails the concurrency tests."""

    def test_lesson03s_iterative_server_fails_every_concurrency_test(self):
        self.assert_suite_fails(
            ["test_lesson06.ConcurrencyTests"],
            ["test_a_hundred_clients_connected_at_once_are_all_served",
             "test_a_silent_client_and_half_a_line_stall_nobody",
             "test_a_client_that_never_reads_stalls_nobody"],
            server=program_path("03-iterative-server", "server", own=False))


class QuietTests(QuietServerCheck, LabTestCase):
    LESSON = LESSON


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON
