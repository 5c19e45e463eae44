"""Lesson 13 - socket buffers and flow control: the claims of lessons/13-socket-buffers/README.md.

Every expected size comes from this machine's sysctls (/proc/sys/net/core/wmem_max and
rmem_max, /proc/sys/net/ipv4/tcp_wmem and tcp_rmem), never from a number written here; the
tests that need them skip where /proc does not describe the program (Wine, not Linux).
Under Wine getsockopt() answers as Windows does (no doubling); those claims are checked
there, and the Linux ones skip."""
import re
import shutil
import subprocess
import time

from labtest import (CommandLineChecks, LabTestCase, MutationChecks, linux_proc_available,
                     under_emulator)

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
        server = self.server("poll", nbytes=0)
        status, report = self.run_client(server, sndbuf=0, rcvbuf=0, nbytes=0)
        self.assertEqual(status, 0, report.lines)
        for name in ("SO_SNDBUF", "SO_RCVBUF"):
            if under_emulator():  # Windows keeps 0: no buffering in the kernel
                self.assertEqual(report.got(name), 0, report.lines)
            else:
                self.assertGreater(report.got(name), 0, report.lines)

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
        if not under_emulator():  # each direction holds what its two buffers hold, no more
            receive_buffer, send_buffer = int(accepted.group(2)), int(accepted.group(3))
            self.assertLessEqual(report.sent, 2 * (report.got("SO_SNDBUF") + receive_buffer))
            self.assertLessEqual(server_sent, 2 * (report.got("SO_RCVBUF") + send_buffer),
                                 "the server's bytes: the client's receive buffer must be "
                                 "small from the handshake on")

    def assert_both_finish(self, server_mode, client_mode):
        server = self.server(server_mode, SMALL, SMALL, TEN_MB)
        status, report = self.run_client(server, client_mode, SMALL, SMALL, TEN_MB)
        self.assertEqual((status, report.sent, report.received), (0, TEN_MB, TEN_MB),
                         report.lines)
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


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON

    def test_a_bad_mode_or_size_is_refused(self):
        for role, args, value in (("server", ["0", "127.0.0.1", "sometimes"], "sometimes"),
                                  ("server", ["0", "127.0.0.1", "never", "big"], "big"),
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
