"""The seed's Python servers as test peers (tests/peers/seed_*.py): the lab's C clients
work with them, and they themselves keep the lab's protocol and survive hostile clients.

A peer the lab's tests rely on must be right, so each one passes the framing and
hostile-client checks the lessons' C servers pass (lessons 02 and 03)."""
import socket
import time

from labtest import LINE_MAX, TOO_LONG_REPLY, LabTestCase, cpu_seconds, peer_path

LABEL = "peers"

def resident_kib(pid):
    """The peer's resident memory in KiB from /proc, or None where there is no /proc (the
    peers are Python processes, so this works under Wine runs too)."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


CLIENT_LESSONS = ("02-byte-streams", "03-iterative-server", "09-nonblocking-client")


class PeerChecks:
    """Mixed into one class per peer; PEER names its file in tests/peers/."""
    PEER = None

    def setUp(self):
        super().setUp()
        self.server = self.start_server(path=peer_path(self.PEER))

    def assert_next_client_served(self):
        connection = self.connect(self.server)
        connection.send_line("next")
        connection.expect_line("next")
        connection.close()

    # ---- the lab's C clients against the peer

    def check_client(self, lesson):
        status, out, err = self.run_program(self.program("client", lesson),
                                            [self.server.host, str(self.server.port)],
                                            b"first\nsecond line\n\n" + b"a" * 2000 + b"\nlast\n")
        self.assertEqual(status, 0, "stderr: %s" % err)
        self.assertEqual(out, ["connected to 127.0.0.1:%d" % self.server.port, "first",
                               "second line", "", TOO_LONG_REPLY.decode(), "last"])

    def test_lesson02_client(self):
        self.check_client(CLIENT_LESSONS[0])

    def test_lesson03_client(self):
        self.check_client(CLIENT_LESSONS[1])

    def test_lesson09_client(self):
        self.check_client(CLIENT_LESSONS[2])

    # ---- framing (lesson 02's checks)

    def test_one_byte_at_a_time_is_answered_once_the_line_is_whole(self):
        connection = self.connect(self.server)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"hel":
            connection.send(bytes([byte]))
            time.sleep(0.005)  # pace: each byte leaves in its own segment
        connection.expect_silence(0.3)
        connection.send(b"lo\n")
        connection.expect_line("hello")

    def test_many_lines_in_one_write_get_one_answer_each_in_order(self):
        connection = self.connect(self.server)
        lines = [("line %d " % number) * 5 for number in range(200)]
        connection.send("".join(line + "\n" for line in lines).encode())
        for line in lines:
            connection.expect_line(line)
        connection.expect_silence(0.2)

    def test_telnet_line_ends_zero_bytes_and_a_line_of_exactly_the_limit(self):
        connection = self.connect(self.server)
        connection.send(b"hi\r\na\x00b\n" + b"x" * LINE_MAX + b"\r\n")
        connection.sock.settimeout(5)
        expected = b"hi\na\x00b\n" + b"x" * LINE_MAX + b"\n"
        received = b""
        while len(received) < len(expected):
            chunk = connection.sock.recv(65536)
            if not chunk:
                break
            received += chunk
        self.assertEqual(received, expected)

    def test_over_long_lines_get_the_documented_answer_and_service_goes_on(self):
        connection = self.connect(self.server)
        for length in (LINE_MAX + 1, LINE_MAX * 10, 100000):
            connection.send(b"y" * length + b"\n")
            connection.expect_line(TOO_LONG_REPLY)
            connection.send_line("still there?")
            connection.expect_line("still there?")

    def test_an_over_long_line_is_answered_before_it_ends(self):
        # Bounded memory: the answer comes once the limit is passed, not at the "\n".
        connection = self.connect(self.server)
        connection.send(b"y" * (LINE_MAX * 5))
        connection.expect_line(TOO_LONG_REPLY)
        connection.send(b"y" * LINE_MAX + b"\nafter\n")
        connection.expect_line("after")

    def test_answers_still_come_after_the_client_half_closes(self):
        connection = self.connect(self.server)
        connection.send(b"one\ntwo\n")
        connection.shutdown_write()
        connection.expect_line("one")
        connection.expect_line("two")
        connection.expect_eof()

    # ---- hostile clients (lesson 03's checks) and concurrency

    def test_connect_and_close_reset_and_half_a_line_do_not_end_the_server(self):
        for _ in range(5):
            self.connect(self.server).close()
        reset = self.connect(self.server)
        reset.send(b"half a li")
        reset.reset()
        half = self.connect(self.server)
        half.send(b"no newline")
        half.close()
        self.assert_next_client_served()

    def test_clients_are_served_at_the_same_time(self):
        first = self.connect(self.server)
        second = self.connect(self.server)
        second.send_line("second")
        second.expect_line("second")
        first.send_line("first")
        first.expect_line("first")

    def test_a_client_that_never_reads_stalls_nobody_and_costs_bounded_memory(self):
        rss_before = resident_kib(self.server.pid)
        silent = self.connect(self.server)
        silent.sock.settimeout(0.5)
        sent = 0
        try:  # the answers pile up unread until every buffer on the way is full
            while sent < 64 * 1024 * 1024:
                sent += silent.sock.send(b"z" * 1000 + b"\n")
        except socket.timeout:
            pass
        self.assertLess(sent, 64 * 1024 * 1024, "the peer should stop reading at some point")
        self.assert_next_client_served()
        if rss_before is not None:
            growth = resident_kib(self.server.pid) - rss_before
            self.assertLess(growth, 16 * 1024, "the peer should not hold the unread answers "
                            "(%d KiB more resident memory after %d bytes)" % (growth, sent))
        silent.reset()
        self.assert_next_client_served()

    def test_ipv6_with_the_lab_s_address_format(self):
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("this machine has no IPv6 loopback")
        server = self.start_server(["0", "::1"], path=peer_path(self.PEER))
        self.assertEqual((server.host, server.family), ("::1", socket.AF_INET6))
        connection = self.connect(server)
        connection.send_line("six")
        connection.expect_line("six")
        port = connection.sock.getsockname()[1]
        connection.close()
        server.stdout.expect(r"^client connected from \[::1\]:%d$" % port)
        server.stdout.expect(r"^client \[::1\]:%d disconnected$" % port)

    def test_prints_connections_and_disconnections(self):
        connection = self.connect(self.server)
        connection.send_line("hello")
        connection.expect_line("hello")
        port = connection.sock.getsockname()[1]
        connection.close()
        self.server.stdout.expect(r"^client connected from 127\.0\.0\.1:%d$" % port)
        self.server.stdout.expect(r"^client 127\.0\.0\.1:%d disconnected$" % port)


class ThreadedPeerTests(PeerChecks, LabTestCase):
    """tests/peers/seed_threaded_server.py: a thread per client, blocking sockets."""
    PEER = "seed_threaded_server.py"


class NonBlockingPeerTests(PeerChecks, LabTestCase):
    """tests/peers/seed_nonblocking_server.py: one thread polling non-blocking sockets."""
    PEER = "seed_nonblocking_server.py"

    def test_an_idle_peer_sleeps_instead_of_spinning(self):
        # The seed's loop never paused: 100% of a CPU with nothing to do.
        self.require_linux_proc()
        connection = self.connect(self.server)  # a client in the list, silent
        connection.send_line("ready")
        connection.expect_line("ready")
        before = cpu_seconds(self.server.pid)
        time.sleep(1.0)  # a claim of idling: measure CPU use over one second
        used = cpu_seconds(self.server.pid) - before
        self.assertLess(used, 0.5, "an idle polling loop should sleep between rounds")
