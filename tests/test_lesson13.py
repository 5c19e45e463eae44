"""Lesson 13 - socket buffers and flow control: the claims of lessons/13-socket-buffers/README.md.

Every expected size comes from this machine's sysctls (/proc/sys/net/core/wmem_max and
rmem_max, /proc/sys/net/ipv4/tcp_wmem and tcp_rmem), never from a number written here; the
tests that need them skip where /proc does not describe the program (Wine, not Linux).
Under Wine getsockopt() answers as Windows does (no doubling); those claims are checked
there, and the Linux ones skip."""
import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
import termios
import time

from labtest import (CommandLineChecks, LabTestCase, MutationChecks, NetworkNamespace,
                     linux_proc_available, open_descriptor_count, process_state, rss_bytes,
                     sanitizer, scaled, thread_count, under_emulator, wait_until)

try:
    import resource
except ImportError:  # not on Windows
    resource = None

LESSON = "13-socket-buffers"
TEN_MB = 10 * 1024 * 1024  # what each side of the deadlock sends before it reads
SMALL = 4096  # asked for where the buffers must be small on every machine
SIZE = re.compile(r"^(SO_SNDBUF|SO_RCVBUF) default (\d+)(?:, asked (\d+), got (\d+))?$")
SENT = re.compile(r"^sent (\d+) bytes( before send would block)?$")
RECEIVED = re.compile(r"^received (\d+) bytes$")
NOW = re.compile(r"^SO_SNDBUF now (\d+), SO_RCVBUF now (\d+)$")
STOPPED = r"^stopped: nothing moved for (\d+) ms"
CONNECTED = r"^client (\S+) connected: SO_RCVBUF (\d+), SO_SNDBUF (\d+)$"
SERVER_STOPPED = (r"^client (\S+) stopped: nothing moved for \d+ ms; sent (\d+) bytes"
                  r"( before send would block)?, received (\d+) bytes$")
DISCONNECTED = r"^client %s disconnected: sent (\d+) bytes, received (\d+) bytes$"


def sysctl(path):
    """The numbers in /proc/sys/net/PATH, e.g. sysctl('ipv4/tcp_wmem') -> [min, default, max]."""
    with open("/proc/sys/net/" + path) as value:
        return [int(field) for field in value.read().split()]


def granted(asked, maximum):
    """What Linux grants for a request: twice the size, the request capped at the maximum."""
    return 2 * min(asked, maximum)


def granted_for_zero(option):
    """What this kernel grants a TCP socket of the test's own that asks for 0: its minimum."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, option, 0)
        return probe.getsockopt(socket.SOL_SOCKET, option)


def address_space_size(pid):
    """VmSize of a process in bytes, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/%d/status" % pid)


def unread_bytes(descriptor):
    """Bytes waiting in a pipe (either end), by FIONREAD."""
    return struct.unpack("i", fcntl.ioctl(descriptor, termios.FIONREAD, b"\0" * 4))[0]


class ClientReport:
    """What a client printed: sizes {name: (default, asked, got)}, the bytes it sent and
    received, whether send would block, the sizes at the end, and whether it stopped."""

    def __init__(self, lines):
        self.lines = lines
        self.sizes, self.sent, self.blocked, self.received = {}, None, False, None
        self.now, self.stopped = None, False
        for line in lines:
            size, sent, received, now = (pattern.match(line)
                                         for pattern in (SIZE, SENT, RECEIVED, NOW))
            if size:
                asked = int(size.group(3)) if size.group(3) else None
                got = int(size.group(4)) if size.group(4) else int(size.group(2))
                self.sizes[size.group(1)] = (int(size.group(2)), asked, got)
            elif sent:
                self.sent, self.blocked = int(sent.group(1)), bool(sent.group(2))
            elif received:
                self.received = int(received.group(1))
            elif now:
                self.now = (int(now.group(1)), int(now.group(2)))
            self.stopped |= bool(re.match(STOPPED, line))
        if self.sent is None or self.received is None or self.now is None:
            raise AssertionError("the client's report is incomplete:\n  " + "\n  ".join(lines))

    def got(self, name):
        return self.sizes[name][2]


class BuffersTestCase(LabTestCase):
    """Starts the lesson's server in a mode with buffer sizes, and runs its client."""
    LESSON = LESSON

    def server(self, mode="never", rcvbuf="default", sndbuf="default", nbytes=TEN_MB):
        return self.start_server(["0", "127.0.0.1", mode, str(rcvbuf), str(sndbuf),
                                  str(nbytes)])

    def client_args(self, server, mode, sndbuf, rcvbuf, nbytes):
        return ["127.0.0.1", str(server.port), mode, str(sndbuf), str(rcvbuf), str(nbytes)]

    def run_client(self, server, mode="send-first", sndbuf="default", rcvbuf="default",
                   nbytes=TEN_MB):
        """Runs the client to its end (stdin empty: a stopped client closes at once); returns
        (exit status, ClientReport)."""
        status, out, err = self.run_program(self.program("client"),
                                            self.client_args(server, mode, sndbuf, rcvbuf,
                                                             nbytes))
        self.assertEqual(err, [], "the client's stderr")
        return status, ClientReport(out)

    def stopped_client(self, server, sndbuf, rcvbuf, nbytes=TEN_MB, mode="send-first"):
        """Starts a client that stays connected once it stopped (its stdin is kept open);
        returns the Program once it has said it stopped."""
        client = self.start_client(self.client_args(server, mode, sndbuf, rcvbuf, nbytes),
                                   keep_stdin_open=True)
        client.stdout.expect(STOPPED, 20, "the client's stdout")
        return client

    def listener_sizes(self, server):
        """{name: (default, asked, got)} from the two lines after "listening on"."""
        sizes = {}
        for _ in range(2):
            match = server.stdout.expect(SIZE.pattern, what="the server's stdout")
            got = match.group(4) or match.group(2)
            sizes[match.group(1)] = (int(match.group(2)),
                                     int(match.group(3)) if match.group(3) else None, int(got))
        return sizes

    def require_linux_sizes(self):
        """Skips where getsockopt() does not answer as Linux does (Wine answers as Windows)."""
        self.require_linux_proc()


class BufferSizeTests(BuffersTestCase):
    """What getsockopt() reports: the defaults, Linux's doubling and its cap, the sizes an
    accepted connection copies from its listener, and autotuning."""

    def test_getsockopt_reports_the_defaults_tcp_wmem_and_tcp_rmem_set(self):
        self.require_linux_sizes()
        tcp_wmem, tcp_rmem = sysctl("ipv4/tcp_wmem"), sysctl("ipv4/tcp_rmem")
        server = self.server("poll", nbytes=0)
        listener = self.listener_sizes(server)
        status, report = self.run_client(server, nbytes=0)
        self.assertEqual(status, 0, report.lines)
        expected = {"SO_SNDBUF": (tcp_wmem[1], None, tcp_wmem[1]),
                    "SO_RCVBUF": (tcp_rmem[1], None, tcp_rmem[1])}
        self.assertEqual(report.sizes, expected, "the client's defaults")
        self.assertEqual(listener, expected, "the listener's defaults")

    def test_linux_doubles_the_size_asked_for(self):
        # The kernel doubles a request to leave room for its own bookkeeping (struct sk_buff
        # and the rest), and getsockopt() reports the doubled size.
        self.require_linux_sizes()
        wmem_max, rmem_max = sysctl("core/wmem_max")[0], sysctl("core/rmem_max")[0]
        for asked in (10000, 100000):  # no subTest: a wrong client must fail this test by name
            server = self.server("poll", asked, asked + 1, nbytes=0)
            listener = self.listener_sizes(server)
            self.assertEqual(listener["SO_RCVBUF"][1:], (asked, granted(asked, rmem_max)))
            self.assertEqual(listener["SO_SNDBUF"][1:], (asked + 1, granted(asked + 1, wmem_max)))
            status, report = self.run_client(server, sndbuf=asked, rcvbuf=asked + 1, nbytes=0)
            self.assertEqual(report.sizes["SO_SNDBUF"][1:], (asked, granted(asked, wmem_max)),
                             report.lines)
            self.assertEqual(report.sizes["SO_RCVBUF"][1:],
                             (asked + 1, granted(asked + 1, rmem_max)), report.lines)

    def test_linux_caps_a_request_at_twice_wmem_max_and_rmem_max(self):
        self.require_linux_sizes()
        wmem_max, rmem_max = sysctl("core/wmem_max")[0], sysctl("core/rmem_max")[0]
        asked = 2 * max(wmem_max, rmem_max) + 12345
        if asked > 999999999:
            self.skipTest("wmem_max or rmem_max is beyond what the programs take")
        server = self.server("poll", asked, asked, nbytes=0)
        sizes = self.listener_sizes(server)
        self.assertEqual(sizes["SO_RCVBUF"][1:], (asked, 2 * rmem_max))
        self.assertEqual(sizes["SO_SNDBUF"][1:], (asked, 2 * wmem_max))
        status, report = self.run_client(server, sndbuf=asked, rcvbuf=asked, nbytes=0)
        self.assertEqual(report.got("SO_SNDBUF"), 2 * wmem_max, report.lines)
        self.assertEqual(report.got("SO_RCVBUF"), 2 * rmem_max, report.lines)

    def test_asking_for_zero_gets_a_minimum_on_linux_and_zero_on_windows(self):
        # Both programs say they asked for 0, and what they got: on Linux the kernel's
        # minimum - what a socket of the test's own gets for 0, less than the default.
        server = self.server("poll", 0, 0, nbytes=0)
        listener = self.listener_sizes(server)
        status, report = self.run_client(server, sndbuf=0, rcvbuf=0, nbytes=0)
        self.assertEqual(status, 0, report.lines)
        for name, option in (("SO_SNDBUF", socket.SO_SNDBUF), ("SO_RCVBUF", socket.SO_RCVBUF)):
            for who, sizes in (("the client", report.sizes), ("the server", listener)):
                default, asked, got = sizes[name]
                self.assertEqual(asked, 0, "%s reports asking 0 for %s: %s"
                                 % (who, name, report.lines))
                if under_emulator():  # Windows keeps 0: no buffering in the kernel
                    self.assertEqual(got, 0, "%s's %s" % (who, name))
                else:
                    self.assertEqual(got, granted_for_zero(option), "%s's %s" % (who, name))
                    self.assertLess(got, default, "%s's %s" % (who, name))

    def test_windows_keeps_the_size_asked_for_without_doubling(self):
        if not under_emulator():
            self.skipTest("Windows' getsockopt(), checked under Wine: natively Linux doubles")
        server = self.server("poll", 20000, 30000, nbytes=0)
        sizes = self.listener_sizes(server)
        self.assertEqual((sizes["SO_RCVBUF"][2], sizes["SO_SNDBUF"][2]), (20000, 30000))
        status, report = self.run_client(server, sndbuf=40000, rcvbuf=50000, nbytes=0)
        self.assertEqual((report.got("SO_SNDBUF"), report.got("SO_RCVBUF")), (40000, 50000))

    def test_an_accepted_connection_has_the_listeners_sizes(self):
        server = self.server("poll", 20000, 30000, nbytes=0)
        sizes = self.listener_sizes(server)
        status, report = self.run_client(server, nbytes=0)
        match = server.stdout.expect(CONNECTED)
        self.assertEqual((int(match.group(2)), int(match.group(3))),
                         (sizes["SO_RCVBUF"][2], sizes["SO_SNDBUF"][2]),
                         "the accepted socket's sizes, nothing set on it")

    def test_linux_grows_a_send_buffer_left_alone_and_keeps_one_that_was_set(self):
        # Autotuning: Linux enlarges the send buffer of a busy connection up to tcp_wmem's
        # third value - unless the program set SO_SNDBUF, which locks the size.
        self.require_linux_sizes()
        tcp_wmem = sysctl("ipv4/tcp_wmem")
        server = self.server("never")
        status, alone = self.run_client(server)
        status, set_once = self.run_client(server, sndbuf=65536)
        self.assertTrue(alone.stopped and set_once.stopped, alone.lines + set_once.lines)
        self.assertLessEqual(alone.now[0], tcp_wmem[2], alone.lines)
        if tcp_wmem[2] > tcp_wmem[1]:
            self.assertGreater(alone.now[0], alone.got("SO_SNDBUF"), alone.lines)
        self.assertEqual(set_once.now[0], set_once.got("SO_SNDBUF"), set_once.lines)


class FlowControlTests(BuffersTestCase):
    """A sender stops when the receiver's buffer and its own are full, after about as many
    bytes as the two hold; a slow reader holds it to its pace."""

    def test_the_client_says_how_many_bytes_went_out_before_send_would_block(self):
        server = self.server("never")
        client = self.stopped_client(server, SMALL, SMALL)
        self.assertTrue(client.running(), "it keeps the connection until stdin ends")
        client.close_stdin()
        self.assertEqual(client.wait(), 1, "a stopped client exits 1")
        report = ClientReport(client.stdout.lines)
        self.assertTrue(report.blocked and 0 < report.sent < TEN_MB, report.lines)
        self.assertEqual(report.received, 0, report.lines)
        self.assertTrue(server.running())

    def test_bytes_before_blocking_grow_when_either_buffer_grows(self):
        small, big = 8192, 131072
        if linux_proc_available():  # both requests must be granted in full, not capped
            big = min(big, sysctl("core/wmem_max")[0], sysctl("core/rmem_max")[0])
        counts = {}

        def measure(name, rcvbuf, sndbuf):
            status, report = self.run_client(self.server("never", rcvbuf), sndbuf=sndbuf)
            self.assertTrue(report.blocked, report.lines)
            counts[name] = report.sent
        for name, rcvbuf, sndbuf in (("both small", small, small), ("bigger send buffer",
                                     small, big), ("bigger receive buffer", big, small)):
            self.in_thread(measure, name, rcvbuf, sndbuf)  # each waits a second: at once
        self.join_threads()
        for name in ("bigger send buffer", "bigger receive buffer"):
            self.assertGreater(counts[name], 2 * counts["both small"], counts)

    def test_no_more_than_twice_what_the_two_buffers_hold_goes_out(self):
        # A receive buffer set on the listener limits each connection from its first byte:
        # the window offered in the handshake comes from it. Set on the accepted socket
        # instead, it comes too late - the handshake offered 64 KB and the sender fills it.
        if under_emulator():
            self.skipTest("Wine reports the sizes as Windows does, undoubled, while Linux "
                          "underneath holds twice as much")
        for size in (SMALL, 65536):  # no subTest: a wrong server must fail this test by name
            server = self.server("never", size)
            status, report = self.run_client(server, sndbuf=size)
            receive_buffer = int(server.stdout.expect(CONNECTED).group(2))
            limit = 2 * (report.got("SO_SNDBUF") + receive_buffer)
            self.assertTrue(report.blocked, report.lines)
            self.assertLessEqual(report.sent, limit, "asked %d: SO_SNDBUF %d, the server's "
                                 "SO_RCVBUF %d" % (size, report.got("SO_SNDBUF"), receive_buffer))

    def test_a_slow_reader_holds_the_sender_to_its_pace(self):
        status, usage, err = self.run_program(self.program("server"), ["--help"])
        pace = re.search(r"slow:\s+reads (\d+) bytes every (\d+) ms", " ".join(usage))
        self.assertTrue(pace, "the server's --help says how slow: %r" % usage)
        most_per_second = int(pace.group(1)) * 1000 / int(pace.group(2))
        nbytes = int(2 * most_per_second)
        server = self.server("slow", SMALL)
        started = time.monotonic()
        status, report = self.run_client(server, sndbuf=SMALL, nbytes=nbytes)
        elapsed = time.monotonic() - started
        self.assertEqual((status, report.sent), (0, nbytes), report.lines)
        in_buffers = 2 * (report.got("SO_SNDBUF") + 2 * SMALL)
        self.assertGreater(elapsed, (nbytes - in_buffers) / most_per_second,
                           "%d bytes to a reader of at most %d bytes a second"
                           % (nbytes, most_per_second))
        self.assertRegex(server.stdout.expect(DISCONNECTED % r"\S+").group(0),
                         r"received %d bytes$" % nbytes)


class DeadlockTests(BuffersTestCase):
    """Both sides send 10 MB before they read: both stop, and say so after the timeout.
    Reading while sending (poll() for both) cures it, on one side or both."""

    def test_both_sending_ten_megabytes_before_reading_both_stop(self):
        server = self.server("send-first", SMALL, SMALL, TEN_MB)
        client = self.stopped_client(server, SMALL, SMALL)
        accepted = server.stdout.expect(CONNECTED)  # its sizes, as the connection has them
        stall = server.stdout.expect(SERVER_STOPPED, 20, "the server's stdout")
        server_sent, server_received = int(stall.group(2)), int(stall.group(4))
        self.assertTrue(stall.group(3), "the server stopped in send: " + stall.group(0))
        lines = (len(client.stdout.lines), len(server.stdout.lines))
        time.sleep(0.5)  # a window in which nothing may move: neither prints, neither ends
        self.assertEqual((len(client.stdout.lines), len(server.stdout.lines)), lines)
        self.assertTrue(client.running())
        client.close_stdin()
        self.assertEqual(client.wait(), 1)
        report = ClientReport(client.stdout.lines)
        self.assertTrue(report.blocked and report.sent < TEN_MB, report.lines)
        self.assertEqual((report.received, server_received), (0, 0), "neither read a byte")
        final = server.stdout.expect(DISCONNECTED % re.escape(stall.group(1)))
        self.assertEqual(int(final.group(1)), server_sent, "the server moved nothing more")
        # The client's close, its receive buffer unread, is a reset: the server's send()
        # meets it (the guide's transcript).
        server.stderr.expect(r"^server: send %s: %s$" % (re.escape(stall.group(1)), ".+"
                             if under_emulator() else "Connection reset by peer"),
                             what="the server's stderr")
        if not under_emulator():  # each direction holds what its two buffers hold, no more
            receive_buffer, send_buffer = int(accepted.group(2)), int(accepted.group(3))
            self.assertLessEqual(report.sent, 2 * (report.got("SO_SNDBUF") + receive_buffer))
            self.assertLessEqual(server_sent, 2 * (report.got("SO_RCVBUF") + send_buffer),
                                 "the server's bytes: the client's receive buffer must be "
                                 "small from the handshake on")

    def assert_both_finish(self, server_mode, client_mode):
        server = self.server(server_mode, SMALL, SMALL, TEN_MB)
        status, report = self.run_client(server, client_mode, SMALL, SMALL, TEN_MB)
        self.assertEqual((status, report.sent, report.blocked, report.received),
                         (0, TEN_MB, False, TEN_MB), report.lines)
        final = server.stdout.expect(DISCONNECTED % r"\S+", what="the server's stdout")
        self.assertEqual(final.groups(), (str(TEN_MB), str(TEN_MB)))

    def test_reading_while_sending_both_finish(self):
        self.assert_both_finish("poll", "poll")

    def test_one_side_reading_while_it_sends_is_enough(self):
        self.assert_both_finish("send-first", "poll")


class SsTests(BuffersTestCase):
    """ss shows the bytes waiting in Recv-Q (the server's) and Send-Q (the client's)."""

    def ss(self, *arguments):
        ss = shutil.which("ss")
        if ss is None:
            self.skipTest("needs ss (Debian: apt-get install iproute2)")
        return subprocess.run([ss] + list(arguments), capture_output=True, text=True,
                              check=True, timeout=30).stdout.splitlines()

    def test_ss_shows_the_bytes_in_recv_q_and_send_q(self):
        server = self.server("never", SMALL)
        client = self.stopped_client(server, SMALL, "default")
        report_lines = list(client.stdout.lines)
        rows = self.ss("-tn", "state", "established", "( sport = :%d or dport = :%d )"
                       % (server.port, server.port))
        queues = {}
        for row in rows[1:]:
            fields = row.split()
            fields = fields[1:] if fields and not fields[0].isdigit() else fields  # a State
            recv_q, send_q, local, peer = fields[:4]
            side = "server" if local.endswith(":%d" % server.port) else "client"
            queues[side] = (int(recv_q), int(send_q))
        sent = int(next(SENT.match(line) for line in report_lines if SENT.match(line)).group(1))
        self.assertEqual(sorted(queues), ["client", "server"], rows)
        self.assertGreater(queues["server"][0], 0, "the server's Recv-Q")
        self.assertGreater(queues["client"][1], 0, "the client's Send-Q")
        self.assertEqual(queues["server"][0] + queues["client"][1], sent,
                         "Recv-Q + Send-Q is every byte the client sent:\n" + "\n".join(rows))

    def test_ss_tmi_shows_the_sizes_getsockopt_reports(self):
        self.require_linux_sizes()
        server = self.server("never", SMALL)
        client = self.stopped_client(server, SMALL, "default")
        receive_buffer = int(server.stdout.expect(CONNECTED).group(2))
        send_buffer = ClientReport(client.stdout.lines).got("SO_SNDBUF")
        rows = self.ss("-tmi", "state", "established", "( sport = :%d )" % server.port)
        self.assertRegex("\n".join(rows), r"skmem:\(r\d+,rb%d," % receive_buffer)
        rows = self.ss("-tmi", "state", "established", "( dport = :%d )" % server.port)
        self.assertRegex("\n".join(rows), r"skmem:\(r\d+,rb\d+,t\d+,tb%d," % send_buffer)


class ServerSurvivalTests(BuffersTestCase):
    """No client ends the server: not one that resets, closes, or vanishes mid-transfer."""

    def test_a_server_that_never_reads_still_sees_a_reset(self):
        server = self.server("never")
        connection = self.connect(server)
        connection.send(b"x" * 1000)
        peer = server.stdout.expect(CONNECTED).group(1)
        connection.reset()  # POLLERR and POLLHUP come although the server asked for nothing
        server.stdout.expect(DISCONNECTED % re.escape(peer))

    def test_clients_that_reset_close_or_vanish_never_end_the_server(self):
        for mode in ("never", "slow", "send-first", "poll"):
            with self.subTest(mode=mode):
                server = self.server(mode, SMALL, SMALL)
                for number in range(6):
                    connection = self.connect(server)
                    connection.send(b"y" * 1000 * number)  # fits in the buffers
                    server.stdout.expect(CONNECTED)
                    if number % 2:
                        connection.reset()
                    else:
                        connection.close()
                vanished = self.start_client(self.client_args(server, "send-first", SMALL,
                                                              SMALL, TEN_MB))
                server.stdout.expect(CONNECTED)
                vanished.kill()  # in the middle of its 10 MB: its bytes still in the buffers
                status, report = self.run_client(server, "poll", SMALL, SMALL, 1000)
                self.assertEqual(report.sent, 1000, report.lines)
                server.stdout.expect(CONNECTED)
                self.assertTrue(server.running(), "stderr:\n" + server.stderr.text())


class ThreadPerClientTests(BuffersTestCase):
    """A thread per client (lesson 06's shape, through common/'s lab_thread_start()): each
    thread ends when its client leaves, and what it held goes back."""

    def test_memory_stays_flat_over_twenty_thousand_clients_each_with_its_own_thread(self):
        # A thread nobody detaches or joins keeps its stack after it ends: here 64 KB
        # resident each (serve()'s buffer), 64 MB per 1,000 clients. A block of 32 bytes
        # never freed per thread is 576 KB over 18,000 clients. (The lesson's server: 60-64
        # KB, once, as the stack cache settles.) Sanitizers keep freed memory aside on
        # purpose, so they are left out.
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer's quarantine keeps freed memory resident")
        server = self.server("poll", nbytes=0)  # reads each client to its end of file
        self.listener_sizes(server)
        printed = [len(server.stdout.lines)]  # each client: "connected", "disconnected"

        def clients_come_and_go(count, batch=50):
            # Each client stays until the server has closed its end: a client that closed at
            # once could be lost in the kernel (its handshake's last ACK dropped by a busy
            # machine, the retried SYN-ACK answered by a socket already gone), never seen.
            for _ in range(count // batch):
                batch_sockets = [socket.create_connection(server.address[:2],
                                                          timeout=scaled(10))
                                 for _ in range(batch)]
                for sock in batch_sockets:
                    sock.shutdown(socket.SHUT_WR)
                for sock in batch_sockets:
                    self.assertEqual(sock.recv(1), b"", "the server ends a client at its "
                                     "end of file")
                    sock.close()
                printed[0] += 2 * batch
                try:
                    wait_until(lambda: len(server.stdout.lines) >= printed[0]
                               and thread_count(server.pid) == 1, 10,
                               "each client's thread to end")
                except AssertionError as timeout:  # which of the two, to tell a hang from a leak
                    raise AssertionError("%s: %d of %d lines printed, %d threads; stderr:\n%s"
                                         % (timeout, len(server.stdout.lines), printed[0],
                                            thread_count(server.pid),
                                            server.stderr.text())) from None

        clients_come_and_go(2000)  # the allocator's pools and glibc's stack cache fill
        before = rss_bytes(server.pid)
        for thousands in range(1, 19):  # a leak of stacks shows after 1,000: stop there
            clients_come_and_go(1000)
            growth = rss_bytes(server.pid) - before
            self.assertLess(growth, 256 * 1024, "resident memory grew by %d KB over %d "
                            "clients that left" % (growth // 1024, thousands * 1000))


class SendFirstServerTests(BuffersTestCase):
    """The server's send-first mode against a client that reads and sends nothing."""

    def test_the_server_ends_its_bytes_with_end_of_file_and_waits_on_after_a_stall(self):
        # It sends BYTES, then says "no more" (shutdown: end of file) and waits for the
        # client's bytes. A client that reads and stays silent stops it there - after all was
        # sent, not "before send would block" - and a stall is only said: what the client
        # sends later is still read.
        server = self.server("send-first", SMALL, SMALL, 1000)
        connection = self.connect(server)
        peer = server.stdout.expect(CONNECTED).group(1)
        connection.sock.settimeout(scaled(5))
        received = b""
        while True:
            chunk = connection.sock.recv(65536)
            if not chunk:
                break
            received += chunk
        self.assertEqual(len(received), 1000, "BYTES, then the server's end of file")
        stall = server.stdout.expect(SERVER_STOPPED, 5, "the server's stdout")
        self.assertEqual(stall.groups(), (peer, "1000", None, "0"), stall.group(0))
        connection.send(b"z" * 500)
        connection.close()
        final = server.stdout.expect(DISCONNECTED % re.escape(peer))
        self.assertEqual(final.groups(), ("1000", "500"), "read after the stall as well")
        self.assertEqual(server.stderr.lines, [])


class DefaultArgumentTests(BuffersTestCase):
    """Arguments left out take the defaults the usage names, in both programs."""

    def default_bytes(self, role):
        status, usage, err = self.run_program(self.program(role), ["--help"])
        match = re.search(r"BYTES \(default (\d+)\)", " ".join(usage))
        self.assertTrue(match, "the %s's --help names the default BYTES: %r" % (role, usage))
        return int(match.group(1))

    def test_the_server_takes_default_sizes_and_bytes_for_those_left_out(self):
        default_bytes = self.default_bytes("server")
        for more, asked in ((["poll"], (None, None)), (["poll", "8192"], (8192, None)),
                            (["poll", "8192", "8192"], (8192, 8192))):
            server = self.start_server(["0", "127.0.0.1"] + more)
            sizes = self.listener_sizes(server)
            self.assertEqual((sizes["SO_RCVBUF"][1], sizes["SO_SNDBUF"][1]), asked, more)
            status, report = self.run_client(server, "poll", SMALL, SMALL, 0)
            self.assertEqual((status, report.received), (0, default_bytes),
                             "server %s: %s" % (more, report.lines))

    def test_the_client_takes_default_sizes_and_bytes_for_those_left_out(self):
        default_bytes = self.default_bytes("client")
        # (A send buffer of 8,192 bytes would take seconds for 10 MB: a big one, then.)
        for more, asked in ((["poll"], (None, None)), (["poll", "1000000"], (1000000, None)),
                            (["poll", "1000000", "8192"], (1000000, 8192))):
            server = self.server("poll", nbytes=0)  # reads everything to the end
            status, out, err = self.run_program(self.program("client"),
                                                ["127.0.0.1", str(server.port)] + more)
            self.assertEqual((status, err), (0, []), "client %s: %s" % (more, out))
            report = ClientReport(out)
            self.assertEqual((report.sizes["SO_SNDBUF"][1], report.sizes["SO_RCVBUF"][1]),
                             asked, more)
            self.assertEqual((report.sent, report.blocked), (default_bytes, False), report.lines)


class ClientEndingTests(BuffersTestCase):
    """How the client ends: a server gone mid-transfer, a name with no address, a refused
    address, and input typed while it holds a stopped connection."""

    def test_a_server_gone_mid_transfer_is_reported_with_the_call_and_exit_status_1(self):
        # The server ends while the client still sends (it stops only after a second of no
        # room): the server's unread bytes make the kernel answer with a reset.
        server = self.server("never", SMALL)
        client = self.start_client(self.client_args(server, "send-first", SMALL, SMALL,
                                                    TEN_MB), keep_stdin_open=True)
        client.stdout.expect(r"^connected to ", 10, "the client's stdout")
        server.kill()
        self.assertEqual(client.wait(5), 1, "stdout:\n%s" % client.stdout.text())
        self.assertEqual(len(client.stderr.lines), 1, client.stderr.text())
        self.assertRegex(client.stderr.lines[0], r"^client: send: " + (
            "" if under_emulator() else "(Connection reset by peer|Broken pipe)$"))

    def test_a_name_that_cannot_be_resolved_is_reported_with_the_name(self):
        # In a network namespace with loopback only, the name server cannot be reached, and
        # .invalid names never exist (RFC 2606): getaddrinfo() fails at once, offline.
        namespace = NetworkNamespace(self)
        client = self.start_client(["no-such-host.invalid", "5050"], namespace=namespace)
        self.assertEqual(client.wait(10), 1, client.stderr.text())
        self.assertEqual(len(client.stderr.lines), 1, client.stderr.text())
        self.assertRegex(client.stderr.lines[0], r"^client: getaddrinfo no-such-host\.invalid: \S")
        self.assertEqual(client.stdout.lines, [])

    def test_a_refused_address_of_a_name_is_closed_before_the_next_is_tried(self):
        from test_lesson09 import PrivateHosts  # a name with two addresses (root only)
        self.require_linux_proc()
        hosts = PrivateHosts(self)
        first, second = hosts.addresses
        for _ in range(5):  # the second address's port must be free on the first one too
            server = self.start_server(["0", second, "never", str(SMALL)])
            refusing = socket.socket()  # bound, never listening: connections are refused
            self.addCleanup(refusing.close)
            try:
                refusing.bind((first, server.port))
                break
            except OSError:
                server.kill()
        else:
            self.fail("no port free on both %s and %s" % (first, second))
        client = self.start_client(hosts.arguments([
            self.program("client"), hosts.NAME, str(server.port), "send-first", str(SMALL),
            str(SMALL), str(TEN_MB)]), path=hosts.unshare, keep_stdin_open=True)
        client.stdout.expect(r"^connected to %s:%d$" % (re.escape(second), server.port), 10,
                             "the client's stdout")
        client.stdout.expect(STOPPED, 20, "the client's stdout")  # it holds on now
        sockets = [name for name in os.listdir("/proc/%d/fd" % client.pid)
                   if os.readlink("/proc/%d/fd/%s" % (client.pid, name)).startswith("socket:")]
        self.assertEqual(len(sockets), 1, "the refused address's socket must be closed: "
                         "the client holds %d sockets" % len(sockets))
        client.close_stdin()
        self.assertEqual(client.wait(), 1, "a stopped client exits 1")

    def test_a_line_typed_into_a_stopped_client_does_not_end_it(self):
        # "keeps the connection until stdin ends": a line is not the end of input.
        self.require_linux_proc()
        server = self.server("never")
        client = self.stopped_client(server, SMALL, SMALL)
        client.write(b"a line typed meanwhile\n")
        descriptor = client.process.stdin.fileno()
        wait_until(lambda: not client.running() or (unread_bytes(descriptor) == 0 and
                                                    process_state(client.pid) == "S"),
                   10, "the client to read the line")
        self.assertTrue(client.running(), "a typed line ended the client")
        client.close_stdin()
        self.assertEqual(client.wait(), 1, "a stopped client exits 1 at end of input")


class ServerResourceTests(BuffersTestCase):
    """Out of threads or of descriptors, the server turns clients away or makes them wait,
    keeps nothing of them, and serves on."""

    def test_a_client_whose_thread_cannot_start_is_closed_at_once_and_leaves_nothing(self):
        # The server's address space limited to 1 MiB more than it uses: no thread stack
        # fits, so pthread_create() fails for every client (as with too many threads).
        self.require_linux_proc()
        if resource is None or not hasattr(resource, "prlimit"):
            self.skipTest("needs resource.prlimit (Linux)")
        if sanitizer():
            self.skipTest("sanitizers reserve terabytes of address space: no limit fits")
        server = self.server("never")
        self.listener_sizes(server)
        pid = server.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_AS)
        resource.prlimit(pid, resource.RLIMIT_AS, (address_space_size(pid) + 2**20, hard))
        self.addCleanup(lambda: server.running() and resource.prlimit(
            pid, resource.RLIMIT_AS, (soft, hard)))

        def turned_away(count):
            for _ in range(count):
                with socket.create_connection(server.address[:2], timeout=scaled(5)) as sock:
                    port = sock.getsockname()[1]
                    try:
                        ending = sock.recv(1)
                    except ConnectionResetError:
                        ending = b""
                    except socket.timeout:
                        self.fail("a client whose thread could not start was not closed")
                    self.assertEqual(ending, b"", "closed, not served")
            return port
        port = turned_away(1)
        server.stderr.expect(r"^server: start a thread for 127\.0\.0\.1:%d: " % port,
                             what="the server's stderr")
        turned_away(500)  # the allocator settles
        descriptors, before = open_descriptor_count(pid), rss_bytes(pid)
        turned_away(3000)  # a client's 112-byte block kept each time would be 336 KB
        growth = rss_bytes(pid) - before
        self.assertLess(growth, 128 * 1024, "resident memory grew by %d KB over 3,000 "
                        "clients turned away" % (growth // 1024))
        self.assertEqual(open_descriptor_count(pid), descriptors, "a socket kept per client")
        self.assertEqual(thread_count(pid), 1)
        resource.prlimit(pid, resource.RLIMIT_AS, (soft, hard))  # room again: served again
        newcomer = self.connect(server)
        server.stdout.expect(r"^client 127\.0\.0\.1:%d connected: "
                             % newcomer.sock.getsockname()[1], what="the server's stdout")
        self.assertTrue(server.running())

    def test_out_of_descriptors_it_warns_serves_on_and_takes_the_waiting_client_later(self):
        self.require_linux_proc()
        if resource is None or not hasattr(resource, "prlimit"):
            self.skipTest("needs resource.prlimit (Linux)")
        server = self.server("poll", nbytes=0)  # each thread reads its client to the end
        self.listener_sizes(server)
        pid = server.pid
        warm_up = self.connect(server)  # what the first client's thread makes, made now
        server.stdout.expect(CONNECTED)
        with_warm_up = open_descriptor_count(pid)
        warm_up.close()
        server.stdout.expect(DISCONNECTED % r"\S+")
        wait_until(lambda: open_descriptor_count(pid) < with_warm_up, 10,
                   "the warm-up client's socket to close")
        descriptors = [int(name) for name in os.listdir("/proc/%d/fd" % pid)]
        limit = max(descriptors) + 3  # room for two more sockets, once holes are filled
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
        self.addCleanup(lambda: server.running() and resource.prlimit(
            pid, resource.RLIMIT_NOFILE, (soft, hard)))
        served = []
        for _ in range(limit - len(descriptors)):
            served.append(self.connect(server))
            server.stdout.expect(CONNECTED)
        waiting = self.connect(server)  # the kernel queues it; accept() has no descriptor
        for _ in range(3):  # it tries again after each pause (50 ms): it has not given up
            server.stderr.expect(r"^server: accept: Too many open files$",
                                 what="the server's stderr")
        self.assertTrue(server.running(), "stderr:\n" + server.stderr.text())
        served[-1].send(b"x" * 1000)  # the clients it has are served meanwhile
        served[-1].close()
        server.stdout.expect(r"^client \S+ disconnected: sent 0 bytes, received 1000 bytes$")
        server.stdout.expect(r"^client 127\.0\.0\.1:%d connected: "
                             % waiting.sock.getsockname()[1], what="the server's stdout")
        self.assertTrue(server.running(), "stderr:\n" + server.stderr.text())


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON

    def test_a_bad_mode_or_size_is_refused(self):
        for role, args, value in (("server", ["0", "127.0.0.1", "sometimes"], "sometimes"),
                                  ("server", ["0", "127.0.0.1", "never", "big"], "big"),
                                  ("server", ["0", "127.0.0.1", "poll", "1", "1", "x"], "x"),
                                  ("client", ["127.0.0.1", "5050", "quickly"], "quickly"),
                                  ("client", ["127.0.0.1", "5050", "poll", "-1"], "-1"),
                                  ("client", ["127.0.0.1", "5050", "poll", "1", "1", "x"], "x")):
            with self.subTest(role=role, args=args):
                self.check_usage_error(role, args, value)


class WrongProgramTests(MutationChecks):
    """Each wrong copy of the lesson's programs fails the test that names its mistake."""

    def test_a_server_setting_its_receive_buffer_after_accept_fails(self):
        self.assert_suite_fails(
            ["test_lesson13.FlowControlTests"],
            ["test_no_more_than_twice_what_the_two_buffers_hold_goes_out"],
            server=self.variant_path("13-rcvbuf-after-accept"))

    def test_a_client_asking_for_its_receive_buffer_after_connect_fails(self):
        self.assert_suite_fails(
            ["test_lesson13.DeadlockTests"],
            ["test_both_sending_ten_megabytes_before_reading_both_stop"],
            client=self.variant_path("13-rcvbuf-after-connect"))

    def test_a_client_printing_the_size_it_asked_for_fails(self):
        self.assert_suite_fails(
            ["test_lesson13.BufferSizeTests"], ["test_linux_doubles_the_size_asked_for"],
            client=self.variant_path("13-prints-the-request"))

    def test_a_client_reading_only_after_sending_fails(self):
        self.assert_suite_fails(
            ["test_lesson13.DeadlockTests"], ["test_one_side_reading_while_it_sends_is_enough"],
            client=self.variant_path("13-poll-reads-late"))
