"""eventloop - the claims every event-loop server makes (lessons 08 select, 10 poll, 11 epoll).

Mix EventLoopChecks into a lesson's test class (before LabTestCase) and set WAIT_CALLS to
the names of the system calls its loop sleeps in. Each test names one claim of the guides:
one thread serves everybody; while nobody talks the thread sleeps in its waiting call and
uses no CPU; an answer comes without a polling delay; silent, half-line and non-reading
clients stall nobody; a burst bigger than one read is answered without more input (the
"call the round until it reports idle" rule, which edge-triggered loops depend on); a
client's answers wait, bounded, while it does not read, and none is lost; a pipelined batch
is answered in full although the client sends nothing more; only ready clients are served.
ResetChecks: a client that resets is named on stderr and dropped, at a failed send or recv.
"""
import os
import platform
import re
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

from labtest import (LINE_MAX, NetworkNamespace, Program, TOO_LONG_REPLY, fill_until_blocked,
                     open_descriptor_count, process_state, rss_bytes, sanitizer, scaled,
                     thread_count, under_emulator, wait_until)
from polling import (describe_difference, idle_cpu_share, median_ms, numbered_lines,
                     push_without_reading, round_trip_times, wait_readable)

CONNECTED = r"^client connected from 127\.0\.0\.1:\d+$"
DISCONNECTED = r"^client 127\.0\.0\.1:\d+ disconnected$"
PUSHED_BYTES = 12 * 1024 * 1024  # well beyond what loopback's socket buffers hold

# System call numbers of the calls an event loop may sleep in (glibc picks among them).
WAIT_SYSCALL_NUMBERS = {
    "x86_64": {"select": {23, 270}, "poll": {7, 271}, "epoll_wait": {232, 281, 441},
               "io_uring_enter": {426}},
    "aarch64": {"select": {72}, "poll": {73}, "epoll_wait": {22, 441}, "io_uring_enter": {426}},
}


def connect_many(test, server, count):
    """Opens count connections and waits until the server has printed each arrival."""
    connections = [test.connect(server) for _ in range(count)]
    for _ in connections:
        server.stdout.expect(CONNECTED)
    return connections


def small_buffer_connection(test, server, size):
    """A connection whose own send and receive buffers are asked to be size bytes (Linux
    doubles it), set before connect() so the window it offers is small from the start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    test.addCleanup(sock.close)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    sock.settimeout(scaled(10))
    sock.connect(server.address[:2])
    return sock


def numbered_batch(lines):
    """lines pipelined lines of 37 bytes each, numbered so that a gap is seen."""
    return b"".join(b"line %05d of a pipelined batch ....\n" % number for number in range(lines))


def read_answers(sock, expected_size, quiet_seconds):
    """Reads until expected_size bytes came, the peer closed, or nothing came for
    quiet_seconds; returns what came."""
    received = bytearray()
    while len(received) < expected_size:
        readable, _, _ = select.select([sock], [], [], quiet_seconds)
        if not readable:
            break
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        received += chunk
    return bytes(received)


RECEIVE_CALLS = ("recvfrom", "recvmsg", "read")
SEND_CALLS = ("sendto", "sendmsg", "write")


def count_calls(test, pid, names, workload):
    """Runs workload() while strace -c -f counts the named system calls of process pid;
    returns {name: count}. Skips the test where strace is missing or may not trace."""
    strace = shutil.which("strace")
    if strace is None:
        test.skipTest("needs strace to count system calls (Debian: apt-get install strace)")
    scratch = tempfile.mkdtemp(prefix="lab-strace-")
    test.addCleanup(shutil.rmtree, scratch, True)
    summary = os.path.join(scratch, "strace.txt")
    tracer = Program([strace, "-c", "-f", "-e", "trace=" + ",".join(names), "-o", summary,
                      "-p", str(pid)])
    try:
        try:
            tracer.stderr.expect(r"Process \d+ attached", 10, "strace's stderr")
        except AssertionError:
            test.skipTest("strace cannot trace here: %s" % tracer.stderr.text().strip())
        workload()
        tracer.process.send_signal(signal.SIGINT)  # strace detaches and writes its table
        tracer.wait(15)
    finally:
        tracer.kill()
    counts = dict.fromkeys(names, 0)
    with open(summary) as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 5 and fields[-1] in counts:
                counts[fields[-1]] = int(fields[3])
    return counts


def count_receives(test, pid, workload, names=RECEIVE_CALLS):
    """The receive calls (or the calls named) of process pid while workload() runs, summed."""
    return sum(count_calls(test, pid, names, workload).values())


def sleeps_on(pid, samples=3, gap=0.005):
    """True if the process is asleep (S) at each of samples looks, gap seconds apart."""
    for sample in range(samples):
        if process_state(pid) != "S":
            return False
        if sample + 1 < samples:
            time.sleep(gap)  # pace the looks at /proc, not a wait for readiness
    return True


def read_until_quiet(sock, quiet_seconds, expected_size):
    """Reads until expected_size bytes came, or nothing came for quiet_seconds."""
    received = bytearray()
    while len(received) < expected_size:
        readable, _, _ = select.select([sock], [], [], quiet_seconds)
        chunk = sock.recv(1 << 16) if readable else b""
        if not chunk:
            break
        received += chunk
    return bytes(received)


def stop_and_go_batch(pid, sock, batch):
    """Sends batch while the server is stopped, lets it run until it sleeps, stops it
    again while every answer it has sent is read, then lets it run and reads the rest.
    Returns the answers, or None if the batch did not fit in the buffers at once."""
    os.kill(pid, signal.SIGSTOP)
    try:
        sock.settimeout(scaled(0.5))
        sock.sendall(batch)
    except socket.timeout:
        return None  # more than the buffers hold while nobody reads: not this case
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: sleeps_on(pid), 10, "the server to sleep with its output full")
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = read_until_quiet(sock, 0.02, len(batch))  # what the kernel already holds
    finally:
        os.kill(pid, signal.SIGCONT)
    return answers + read_until_quiet(sock, scaled(0.5), len(batch) - len(answers))


def half_close_to_a_slow_reader(test, namespace, server, lines=20000):
    """From a socket made in namespace: sends lines numbered lines (740 KB), then EOF, while
    reading slowly through a 4 KB receive buffer; fails test unless every answer came back
    before the server closed."""
    sock = namespace.socket()
    test.addCleanup(sock.close)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(scaled(10))
    sock.connect(server.address)
    batch = numbered_batch(lines)

    def send_then_half_close():
        sock.sendall(batch)
        sock.shutdown(socket.SHUT_WR)
    test.in_thread(send_then_half_close)
    received = bytearray()
    while True:
        time.sleep(0.001)  # pace: a slow reader, so the server's answers back up
        chunk = sock.recv(8192)
        if not chunk:
            break
        received += chunk
    test.join_threads()
    if bytes(received) != batch:
        test.fail("after the half-close: " + describe_difference(batch, bytes(received)))


def echo_rounds(connections, rounds=1, tag="client"):
    """Every connection sends a line, then every answer is read, last connection first:
    all of them wait at the same time, and an answer on the wrong socket is caught."""
    for round_number in range(rounds):
        for number, connection in enumerate(connections):
            connection.send_line("%s %d round %d" % (tag, number, round_number))
        for number in reversed(range(len(connections))):
            connections[number].expect_line("%s %d round %d" % (tag, number, round_number))


class EventLoopChecks:
    """One thread, sleeping in WAIT_CALLS until a socket is ready, serves every client."""

    WAIT_CALLS = ()

    def test_one_thread_serves_fifty_clients_at_once(self):
        self.require_linux_proc()
        server = self.start_server()
        connections = connect_many(self, server, 50)
        echo_rounds(connections, rounds=2)
        allowed = 1 + (1 if sanitizer() == "thread" else 0)  # TSan may start a helper
        self.assertLessEqual(thread_count(server.pid), allowed,
                             "50 clients connected: the server has %d threads"
                             % thread_count(server.pid))

    def test_while_idle_it_sleeps_in_its_waiting_call_and_uses_no_cpu(self):
        # With 100 clients connected and silent the loop must sleep in select/poll/epoll
        # with no timeout: a loop that asks for writability with nothing to write (or
        # polls) is woken at once, every round, and burns a core.
        self.require_linux_proc()
        server = self.start_server()
        connections = connect_many(self, server, 100)
        echo_rounds(connections[:5])
        share = idle_cpu_share(server.pid, 1.0)
        self.assertLess(share, 0.01, "idle with 100 clients: %.1f%% of a core" % (share * 100))
        numbers = WAIT_SYSCALL_NUMBERS.get(platform.machine())
        if numbers is None:
            return  # the CPU check above still ran; syscall numbers unknown here
        with open("/proc/%d/syscall" % server.pid) as syscall:
            fields = syscall.read().split()
        expected = set().union(*(numbers[name] for name in self.WAIT_CALLS))
        self.assertTrue(fields and fields[0].isdigit() and int(fields[0]) in expected,
                        "the server should be asleep in %s, /proc says %r"
                        % ("/".join(self.WAIT_CALLS), fields[:1]))

    def test_answers_come_without_a_polling_delay(self):
        # A polling loop (lesson 05) delays a reply by up to its pause; readiness wakes
        # the loop as the line arrives. 20 ms is a tenth of a 200 ms polling pause.
        server = self.start_server()
        connection = self.connect(server)
        times = round_trip_times(connection.sock, 20, 0.02)
        self.assertLess(median_ms(times), scaled(20),
                        "median reply delay %.1f ms" % median_ms(times))

    def test_fifty_silent_half_line_clients_and_a_non_reader_stall_nobody(self):
        server = self.start_server()
        halves = connect_many(self, server, 50)
        for connection in halves:
            connection.send(b"half a li")
        hog = self.connect(server)
        self.assertLess(fill_until_blocked(hog), 64 * 1024 * 1024,
                        "the server should stop reading a client that does not read")
        for number in range(5):
            newcomer = self.connect(server)
            newcomer.send_line("not stalled %d" % number)
            newcomer.expect_line("not stalled %d" % number, timeout=2)
        halves[0].expect_silence(0.1)  # half a line gets no answer...
        for connection in halves:
            connection.send(b"ne\n")  # ...until its end arrives
        for connection in halves:
            connection.expect_line("half a line")
        hog.reset()

    def test_a_burst_bigger_than_one_read_is_answered_without_more_input(self):
        # 40 lines of 500 bytes arrive at once: one recv() takes about two of them. The
        # rest are answered only if the loop calls the round again while it makes
        # progress (level-triggered: the socket stays readable; edge-triggered: the round
        # is repeated until "would block"). Nothing else is sent until every answer came.
        server = self.start_server()
        connection = self.connect(server)
        lines = [("%02d" % number) + "b" * 498 for number in range(40)]
        connection.send(("\n".join(lines) + "\n").encode())
        for line in lines:
            connection.expect_line(line, timeout=5)

    def test_a_client_that_never_stops_sending_does_not_starve_the_others(self):
        # One client sends as fast as it can and reads its answers as fast as they come.
        # A loop that serves one socket until it has nothing more (an edge-triggered loop
        # that drains without a bound) then never gets back to the others.
        server = self.start_server()
        hog = self.connect(server)
        done = threading.Event()

        def flood():
            while not done.is_set():
                try:
                    hog.sock.sendall((b"f" * 99 + b"\n") * 200)
                except socket.timeout:
                    pass  # the server is behind: try again, unless the test is over

        def drain():
            while not done.is_set():
                try:
                    hog.sock.recv(1 << 16)
                except socket.timeout:
                    pass
        hog.sock.settimeout(0.2)  # both threads look at `done` at least this often
        self.in_thread(flood)
        self.in_thread(drain)
        try:
            other = self.connect(server)
            times = round_trip_times(other.sock, 10, 0.02)
        finally:
            done.set()
            self.join_threads()
        self.assertLess(median_ms(times), scaled(50), "another client's median reply while "
                        "one client floods: %.1f ms" % median_ms(times))

    def test_a_pipelined_batch_is_answered_in_full_though_nothing_more_is_sent(self):
        # The client pipelines a batch with small buffers, stops sending without closing,
        # then reads. A round that sends its answers and returns while whole lines still
        # wait in its input would leave them there for ever: the socket never becomes
        # readable again. Sizes swept, each on a new connection; every byte must come back.
        server = self.start_server()
        for lines in range(2600, 4400, 45):
            sock = small_buffer_connection(self, server, 8192)
            batch = numbered_batch(lines)
            sender = threading.Thread(target=sock.sendall, args=(batch,), daemon=True)
            sender.start()
            sender.join(scaled(2))  # buffers full before the batch is out: read meanwhile
            try:
                answers = read_answers(sock, len(batch), scaled(2))
            except ConnectionResetError:
                if not under_emulator():
                    raise
                self.skipTest("Wine reset the connection mid-batch (1 run in 20 here, "
                              "2026-12-03; tests/README.md): not checked this run")
            sender.join(scaled(10))
            if answers != batch:
                self.fail("batch of %d bytes: %s" % (len(batch), describe_difference(batch, answers)))
            sock.close()

    def test_a_pipelined_batch_is_answered_in_full_when_its_answers_leave_at_once(self):
        # The same claim, with the timing that breaks a round which stops after one send,
        # made on purpose: the server's send buffer held at 32 KB (a network namespace of
        # the test's own: root only), the server stopped (SIGSTOP) while the batch goes in,
        # let run until it sleeps with its output full, stopped again while the client
        # empties every buffer, then let run: its next send takes all its answers at once.
        # Whole lines still in its input must then be answered, though the client sends
        # nothing more. A round that stopped after the send left 185-666 bytes unanswered
        # for 1 or 2 of these 54 sizes.
        self.require_linux_proc()
        namespace = NetworkNamespace(self, tcp_wmem="4096 32768 32768")
        server = self.start_server(namespace=namespace)
        self.addCleanup(lambda: server.running() and os.kill(server.pid, signal.SIGCONT))
        unanswered = []
        for lines in range(1000, 1700, 13):
            sock = namespace.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.address)
            batch = numbered_batch(lines)
            answers = stop_and_go_batch(server.pid, sock, batch)
            sock.close()
            if answers is not None and answers != batch:
                unanswered.append("%d bytes: %s" % (len(batch), describe_difference(batch, answers)))
        self.assertEqual(unanswered, [], "batches left unanswered")

    def test_beside_a_client_that_does_not_read_it_uses_no_cpu(self):
        # A client sends and never reads: its answers fill every buffer. The loop must stop
        # asking to read it (its answer would not fit) - a socket that stays readable while
        # the round takes nothing wakes the loop at once, for ever, at a full core.
        self.require_linux_proc()
        server = self.start_server()
        hog = self.connect(server)
        self.assertLess(fill_until_blocked(hog), 64 * 1024 * 1024,
                        "the server should stop reading a client that does not read")
        share = idle_cpu_share(server.pid, 1.0)
        self.assertLess(share, 0.05, "beside a client that does not read: %.1f%% of a core"
                        % (share * 100))
        other = self.connect(server)
        echo_rounds([other], tag="beside the hog")

    def test_beside_a_client_sending_blank_lines_without_reading_it_uses_no_cpu(self):
        # Each answer to a blank line is one byte, so the answers fill the output to exactly
        # its limit less the longest answer. There the loop must stop asking to read that
        # client too, or its socket stays readable, the round takes nothing, and the wait
        # returns at once, for ever.
        self.require_linux_proc()
        server = self.start_server()
        hog = self.connect(server)
        hog.sock.settimeout(0.5)  # nothing goes out for 0.5 s: every buffer is full
        sent, limit = 0, 64 * 1024 * 1024
        try:
            while sent < limit:
                sent += hog.sock.send(b"\n" * 65536)
        except socket.timeout:
            pass
        self.assertLess(sent, limit, "the server should stop reading a client that does not read")
        share = idle_cpu_share(server.pid, 1.0)
        self.assertLess(share, 0.05, "beside a blank-line client that does not read: %.1f%% of "
                        "a core" % (share * 100))
        echo_rounds([self.connect(server)], tag="beside the blank lines")

    def test_after_a_half_close_every_answer_comes_though_the_buffers_were_full(self):
        # 740 KB of lines, then EOF, to a client that reads slowly through a small buffer,
        # from a server whose send buffer is held at 16 KB (its own network namespace:
        # loopback's buffers grow to megabytes and hide the mistake). When the server reads
        # the EOF, answers still wait in its output; closing then instead of finishing
        # them loses them. The client must get every byte.
        namespace = NetworkNamespace(self, tcp_wmem="4096 16384 16384")
        server = self.start_server(namespace=namespace)
        half_close_to_a_slow_reader(self, namespace, server)
        server.stdout.expect(DISCONNECTED)

    def test_only_the_ready_clients_are_served(self):
        # 200 clients connected and silent, one client asks 500 times: a loop that gives
        # every client a round on every wake makes 200 receives per request instead of
        # about one. strace counts the server's receive calls.
        self.require_linux_proc()
        server = self.start_server()
        idle = connect_many(self, server, 200)
        active = self.connect(server)
        echo_rounds([active], tag="warm up")

        def five_hundred_requests():
            echo_rounds([active], rounds=500, tag="ready")
        receives = count_receives(self, server.pid, five_hundred_requests)
        self.assertLess(receives, 500 * 4, "%d receive calls for 500 requests with 200 idle "
                        "clients: are idle clients served on every wake?" % receives)
        self.assertTrue(idle)

    def test_a_pipelined_batch_goes_back_in_a_few_sends_not_one_per_line(self):
        # 2,000 short lines in one write: their answers fit the output together and leave in
        # a handful of send() calls. A round that answered one line per send would make
        # 2,000 system calls where a few do (strace counts them).
        self.require_linux_proc()
        server = self.start_server()
        connection = self.connect(server)
        echo_rounds([connection], tag="warm up")
        batch = b"".join(b"%d\n" % number for number in range(2000))

        def one_batch():
            connection.send(batch)
            received = b""
            while len(received) < len(batch):
                received += connection.sock.recv(65536)
            self.assertEqual(received, batch)
        sends = count_receives(self, server.pid, one_batch, SEND_CALLS)
        self.assertLess(sends, 200, "%d send calls for 2,000 pipelined lines" % sends)

    def test_one_byte_at_a_time_is_answered_once_the_line_is_whole(self):
        server = self.start_server()
        connection = self.connect(server)
        for byte in b"slowly\n":
            connection.send(bytes([byte]))
            time.sleep(0.01)  # pace: each byte its own segment and its own round
        connection.expect_line("slowly")

    def test_a_client_that_does_not_read_gets_every_answer_later_in_order(self):
        if under_emulator():
            # 12 MB through a socket the server stopped reading keeps wineserver at a full
            # core; the connection was reset in 2 of 6 CI runs (tests/README.md).
            self.skipTest("under Wine this push was reset in 2 of 6 runs; checked natively")
        pusher = self.connect(self.start_server())
        data = numbered_lines(PUSHED_BYTES)
        stalled, sent_first, answers = push_without_reading(pusher.sock, data)
        if answers != data:  # every answer, whole, in order, none twice
            self.fail(describe_difference(data, answers))
        self.assertTrue(stalled, "the server should stop reading a client that does not read")

    def test_answers_are_finished_after_the_client_half_closes(self):
        # The client sends its lines and EOF at once, then reads: every answer comes
        # before the server closes ("finish the answers, then close").
        server = self.start_server()
        connection = self.connect(server)
        connection.send(b"".join(b"line %d\n" % number for number in range(200)))
        connection.shutdown_write()
        for number in range(200):
            connection.expect_line("line %d" % number)
        connection.expect_eof()
        server.stdout.expect(DISCONNECTED)

    def test_an_over_long_line_is_cut_off_and_the_client_served_on(self):
        connection = self.connect(self.start_server())
        connection.send(b"m" * (LINE_MAX * 5))
        connection.expect_line(TOO_LONG_REPLY)
        connection.send(b"m" * 1000 + b"\nafter\n")
        connection.expect_line("after")

    def test_fifty_clients_leaving_at_once_each_leave_once(self):
        server = self.start_server()
        connections = connect_many(self, server, 50)
        echo_rounds(connections)
        for number, connection in enumerate(connections):
            if number % 3 == 0:
                connection.send_line("an answer left unread")
                wait_readable(connection.sock)
                connection.close()  # unread bytes: RST
            elif number % 3 == 1:
                connection.reset()
            else:
                connection.send(b"half a line, then gone")
                connection.close()
        for _ in connections:
            server.stdout.expect(DISCONNECTED)
        echo_rounds([self.connect(server)], tag="after")
        self.assertEqual(sum("disconnected" in line for line in server.stdout.lines), 50,
                         "each client leaves exactly once:\n" + server.stdout.text())

    def test_memory_stays_flat_over_thousands_of_clients(self):
        # A client's state must be freed when it leaves: 4,000 clients - half say one line and
        # leave, half send half a line and reset - may not grow the server's resident memory
        # (a 128-byte struct leaked per client is 500 KB here; a line reader, 2 MB).
        # Sanitizers keep freed memory aside on purpose, so they are left out.
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer's quarantine keeps freed memory resident")
        server = self.start_server()

        def clients_come_and_go(count):
            for number in range(count):
                sock = socket.create_connection(server.address[:2], timeout=scaled(10))
                if number % 2:
                    sock.sendall(b"half a li")  # read into the client's line reader, then
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                    sock.close()  # a reset: the server drops it with its input held
                    continue
                sock.sendall(b"x\n")
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
                sock.close()

        clients_come_and_go(500)  # the allocator's pools reach their working size
        before = rss_bytes(server.pid)
        clients_come_and_go(4000)
        growth = rss_bytes(server.pid) - before
        self.assertLess(growth, 160 * 1024, "resident memory grew by %d KB over 4,000 clients "
                        "that left" % (growth // 1024))

    def test_memory_stays_flat_over_clients_that_leave_with_answers_waiting(self):
        # Clients at once send lines and read nothing until every buffer is full - the server
        # then holds 16 KB of answers for each - and reset: 60, then 40. Once the 40 are gone
        # the server may not be bigger than it was holding the 60 (16 KB of answers kept per
        # departed client would be 640 KB more: the 40's). The peak is the yardstick, not the size after
        # the 60 left: the allocator may give a freed top of its heap back (or not), which
        # moves that size by hundreds of KB. The server runs in a namespace whose send
        # buffers are held at 16 KB, so filling them takes ~200 KB per client, not megabytes.
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer's quarantine keeps freed memory resident")
        namespace = NetworkNamespace(self, tcp_wmem="4096 16384 16384")
        server = self.start_server(namespace=namespace)

        def fill(count):
            socks = []
            for _ in range(count):
                sock = namespace.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(server.address[:2])
                sock.setblocking(False)
                socks.append(sock)
            lines = b"x" * 99 + b"\n"
            lines *= 160
            last_progress = time.monotonic()
            while time.monotonic() - last_progress < 0.3:  # until nothing more goes out
                _, writable, _ = select.select([], socks, [], 0.1)
                for sock in writable:
                    try:
                        if sock.send(lines) > 0:
                            last_progress = time.monotonic()
                    except BlockingIOError:
                        pass
            return socks

        def reset(socks):
            for sock in socks:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            wait_until(lambda: open_descriptor_count(server.pid) < 10, 10,
                       "the clients to be gone")

        first = fill(60)
        holding_60 = rss_bytes(server.pid)
        reset(first)
        reset(fill(40))
        growth = rss_bytes(server.pid) - holding_60
        self.assertLess(growth, 256 * 1024, "after 40 clients left with answers waiting, "
                        "resident memory was %d KB above its size while it served 60"
                        % (growth // 1024))

    def test_no_descriptor_is_left_behind_after_300_clients(self):
        self.require_linux_proc()
        server = self.start_server()
        first = self.connect(server)
        echo_rounds([first])  # the loop runs: every descriptor it keeps (epoll's) is open
        baseline = open_descriptor_count(server.pid) - 1  # all but first's socket
        first.close()
        for number in range(300):
            connection = self.connect(server)
            if number % 2:
                connection.send_line("hello")
                connection.expect_line("hello")
                connection.close()
            else:
                connection.reset()
        wait_until(lambda: open_descriptor_count(server.pid) <= baseline, 10,
                   "the server's descriptors to come back to %d" % baseline)


class ResetChecks:
    """A client that resets is dropped and named on stderr, whichever call meets the reset:
    send() (the server has stopped reading it, its answers do not fit) or recv()."""

    def assert_named_and_dropped(self, server, connection, calls):
        peer = re.escape("127.0.0.1:%d" % connection.sock.getsockname()[1])
        connection.reset()
        warning = server.stderr.expect(r"^server: (%s) %s: " % (calls, peer),
                                       what="the server's stderr").group(0)
        server.stdout.expect(r"^client %s disconnected$" % peer, what="the server's stdout")
        if sys.platform.startswith("linux") and not under_emulator():
            self.assertIn("Connection reset by peer", server.stderr.text(), warning)
        echo_rounds([self.connect(server)], tag="after the reset")

    def test_a_client_that_stops_reading_then_resets_is_dropped_and_named(self):
        # The server has stopped reading the client and waits only to write: the reset
        # reaches it as a failed send(), which must end that client - taken for "would
        # block", the answers wait for ever and the dead socket is reported again at once.
        server = self.start_server()
        hog = self.connect(server)
        self.assertLess(fill_until_blocked(hog), 64 * 1024 * 1024,
                        "the server should stop reading a client that does not read")
        self.assert_named_and_dropped(server, hog, "send|recv")

    def test_a_client_that_resets_after_its_answer_is_dropped_and_named(self):
        # Nothing waits to be sent: only a receive meets the reset. Ignored, the reset reads
        # as a plain end of file next time: the client goes, but nobody is told why.
        if under_emulator():
            self.skipTest("under Wine a reset is sometimes read as end of file")
        server = self.start_server()
        connection = self.connect(server)
        echo_rounds([connection])
        self.assert_named_and_dropped(server, connection, "recv")
