"""Lesson 16 - dead peers: the claims of lessons/16-dead-peers/README.md.

The server is lesson 10's poll loop with timers: "* ping" after IDLE seconds of silence, a
drop GRACE seconds later; TCP keepalive and TCP_USER_TIMEOUT on every accepted socket. A
frozen peer is a client stopped with SIGSTOP (its kernel still acknowledges); a pulled cable
is two network namespaces joined by a veth pair, one end then set down (root only)."""
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

from eventloop import CONNECTED, EventLoopChecks
from labtest import (CommandLineChecks, Connection, EchoClientChecks, HostileClientChecks,
                     NameChecks,
                     LabTestCase, LoopBackoffCheck, MutationChecks, NetworkNamespace, Program,
                     UnansweredListener, command_for, linux_proc_available, process_state, scaled,
                     under_emulator, wait_until)
from polling import idle_cpu_share

LESSON = "16-dead-peers"
PING = b"* ping"
DROPPED = r"^client %s dropped: no answer to the heartbeat$"
PINGED = r"^client %s silent for \d+ s: \* ping$"
TIMED_OUT = r"^server: (recv|send) %s: Connection timed out$"
EARLY = 0.05  # a deadline may look this much early: the server's clock counts whole ms
# The Windows build's headers name neither keepalive's times nor TCP_USER_TIMEOUT; its server
# says so once at start (README.md, "Windows"), and that is all it may say.
WINDOWS_NOTES = ["server: keepalive's times cannot be set here: the system's are used",
                 "server: no TCP_USER_TIMEOUT here (Linux only): not set"]


def peer_of(connection):
    """"ADDRESS:PORT" of a test's connection, as the server prints it."""
    host, port = connection.sock.getsockname()[:2]
    return re.escape("%s:%d" % (host, port))


class DeadPeerTestCase(LabTestCase):
    LESSON = LESSON

    def require_signals(self):
        if under_emulator() or not hasattr(signal, "SIGSTOP"):
            self.skipTest("stops a process with SIGSTOP: POSIX native builds only")

    def assert_nothing_warned(self, server, why):
        notes = WINDOWS_NOTES if under_emulator() else []
        self.assertEqual(server.stderr.text(), "\n".join("  " + note for note in notes), why)

    def assert_on_time(self, what, happened, expected, late):
        self.assertGreaterEqual(happened, expected - EARLY, "%s came %.2f s early"
                                % (what, expected - happened))
        self.assertLessEqual(happened, expected + late, "%s came %.2f s late (allowed %.2f s)"
                             % (what, happened - expected, late))


class PollTests(EventLoopChecks, DeadPeerTestCase):
    """Lesson 10's claims hold with the timers added (defaults: no heartbeat for 30 s)."""
    WAIT_CALLS = ("poll",)


class HostileClientTests(HostileClientChecks, DeadPeerTestCase):
    pass


class ResourceTests(LoopBackoffCheck, DeadPeerTestCase):
    pass


class CommandLineTests(CommandLineChecks, DeadPeerTestCase):

    def test_server_rejects_bad_idle_grace_keepalive_and_user_timeout(self):
        for args, value in ((["0", "127.0.0.1", "soon"], "soon"),
                            (["0", "127.0.0.1", "86401"], "86401"),
                            (["0", "127.0.0.1", "30", "0"], "'0'"),
                            (["0", "127.0.0.1", "30", "10", "60,10"], "60,10"),
                            (["0", "127.0.0.1", "30", "10", "60,0,5"], "60,0,5"),
                            (["0", "127.0.0.1", "30", "10", "60,10,5x"], "60,10,5x"),
                            (["0", "127.0.0.1", "30", "10", "off", "-1"], "-1")):
            with self.subTest(args=args):
                self.check_usage_error("server", args, value)

    def test_client_rejects_a_bad_keepalive(self):
        self.check_usage_error("client", ["127.0.0.1", "5050", "sometimes"], "sometimes")

    def test_the_keepalive_limits_are_accepted_and_one_more_is_refused(self):
        # The longest keepalive (32767 s idle, 127 probes 32767 s apart) is 48 days: the
        # user timeout it implies is capped at a day, the most TCP_USER_TIMEOUT's int
        # takes here, so nothing overflows and nothing is warned about.
        server = self.start_server(["0", "127.0.0.1", "7", "3", "32767,32767,127"])
        server.stdout.expect(r"^heartbeat after 7 s of silence, drop 3 s later; keepalive "
                             r"32767,32767,127; user timeout 86400000 ms$")
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(server.port), "32767,32767,127"],
                                            b"longest keepalive\n")
        self.assertEqual((status, out[1:], err), (0, ["longest keepalive"], []))
        connection = self.connect(server)
        connection.send_line("served")
        connection.expect_line("served")
        self.assert_nothing_warned(server, "an option the system refused")
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(server.port), "1,1,1"],
                                            b"shortest keepalive\n")
        self.assertEqual((status, out[1:], err), (0, ["shortest keepalive"], []))
        for keepalive in ("32768,10,5", "60,32768,5", "60,10,128"):
            for role, args in (("server", ["0", "127.0.0.1", "30", "10", keepalive]),
                               ("client", ["127.0.0.1", "5050", keepalive])):
                with self.subTest(role=role, keepalive=keepalive):
                    self.check_usage_error(role, args, keepalive)

    def test_idle_0_means_no_heartbeat_and_off_means_no_keepalive(self):
        server = self.start_server(["0", "127.0.0.1", "0", "10", "off"])
        server.stdout.expect(r"^keepalive off; user timeout 30000 ms$")
        connection = self.connect(server)
        connection.send_line("no options to set")
        connection.expect_line("no options to set")
        connection.close()
        server.stdout.expect(r"^client 127\.0\.0\.1:\d+ disconnected$")
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(server.port), "off"], b"off\n")
        self.assertEqual((status, out[1:], err), (0, ["off"], []), "the client, keepalive off")
        self.assert_nothing_warned(server, "nothing to set, nothing to warn about")

    def test_the_server_says_once_what_it_set(self):
        server = self.start_server(["0", "127.0.0.1", "7", "3", "20,4,2"])
        server.stdout.expect(r"^heartbeat after 7 s of silence, drop 3 s later; keepalive "
                             r"20,4,2; user timeout 28000 ms$")


class NameTests(NameChecks, DeadPeerTestCase):
    """The client's own connect loop (with a deadline) tries a name's addresses in turn
    and closes the socket of one that refused before it tries the next."""


class ConnectDeadlineTests(DeadPeerTestCase):
    """The client's connect() is lesson 09's: non-blocking, and given up at the 5,000 ms its
    usage names, not after the kernel's two minutes of SYN retries."""

    def test_a_connect_that_cannot_complete_gives_up_after_5000_ms(self):
        status, out, err = self.run_program(self.program("client"), ["--help"])
        self.assertIn("Gives up connecting after 5000 ms.", "\n".join(out))
        with UnansweredListener() as unanswered:
            client = self.start_client(["127.0.0.1", str(unanswered.port)],
                                       keep_stdin_open=True)
            started = time.monotonic()
            status = client.wait(5.0 + scaled(2.0))
            elapsed = time.monotonic() - started
        self.assertEqual((status, client.stdout.lines), (1, []), client.stderr.text())
        self.assertRegex(client.stderr.text(),
                         r"^  client: connect 127\.0\.0\.1:%d: .*timed out" % unanswered.port)
        self.assertGreaterEqual(elapsed, 5.0 - EARLY, "it gave up before its deadline")


class EchoClientTests(EchoClientChecks, DeadPeerTestCase):
    """The lesson's client is an echo client like lesson 03's, pings apart."""

    def test_a_pong_the_user_typed_is_printed_only_the_clients_own_are_hidden(self):
        server = self.start_server()
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(server.port)],
                                            b"* pong\nafter\n")
        self.assertEqual((status, out[1:]), (0, ["* pong", "after"]), err)

    def test_a_server_that_closes_is_said_so_without_a_warning(self):
        client, served = self.client_and_a_server_of_our_own()
        client.write(b"hi\n")
        served.expect_line("hi")
        served.close()
        client.stdout.expect(r"^server closed the connection$")
        self.assertEqual(client.wait(), 1, "a server gone mid-conversation is an error")
        self.assertEqual(client.stderr.text(), "", "an end of file is not a failed call")

    def test_a_reset_by_the_server_is_named_whether_or_not_a_line_was_typed(self):
        # The client waits on the keyboard and the server at once: it may find the reset by
        # itself (recv) before the typed line, or meet it sending that line (send).
        if under_emulator():
            self.skipTest("under Wine a reset is sometimes read as end of file")
        client, served = self.client_and_a_server_of_our_own()
        client.stdout.expect(r"^connected to ")
        served.reset()
        try:
            client.write(b"too late\n")
        except (OSError, AssertionError):
            pass  # it has already found the reset and ended: its input is closed
        client.stderr.expect(r"^client: (send|recv): ")
        self.assertEqual(client.wait(), 1)


    def test_a_reset_a_typed_line_meets_first_is_named_by_send_not_taken_for_a_close(self):
        # Stopped, the client misses the reset; woken, it finds a typed line and the reset in
        # one wait, and its send() meets the reset first. Were that error ignored, recv()
        # would then read a plain end of file: "server closed the connection" for a reset.
        self.require_signals()
        self.require_linux_proc()
        client, served = self.client_and_a_server_of_our_own()
        client.stdout.expect(r"^connected to ")
        ports = served.sock.getpeername()[1], served.sock.getsockname()[1]
        self.addCleanup(lambda: client.running() and os.kill(client.pid, signal.SIGCONT))
        os.kill(client.pid, signal.SIGSTOP)
        wait_until(lambda: process_state(client.pid) == "T", 10, "the client to stop")
        served.reset()
        wait_until(lambda: not tcp_connection_listed(*ports), 10,
                   "the reset to close the client's socket")
        client.write(b"too late\n")
        os.kill(client.pid, signal.SIGCONT)
        self.assertEqual(client.wait(), 1)
        self.assertRegex(client.stderr.text(), r"^  client: send: ")
        self.assertNotIn("server closed the connection", client.stdout.lines)


def tcp_connection_listed(local_port, remote_port):
    """Whether /proc/net/tcp lists a connection between these loopback ports (one closed by
    a reset is not listed)."""
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            local, remote = row.split()[1:3]
            if local.endswith(":%04X" % local_port) and remote.endswith(":%04X" % remote_port):
                return True
    return False


class HeartbeatTests(DeadPeerTestCase):
    """After IDLE seconds without a byte the server sends "* ping"; nothing within GRACE
    seconds more, and the client is dropped. Any byte keeps it."""

    IDLE, GRACE = 1, 1

    def start_heartbeat_server(self):
        return self.start_server(["0", "127.0.0.1", str(self.IDLE), str(self.GRACE)])

    def test_a_silent_client_is_pinged_after_idle_then_dropped_after_grace(self):
        server = self.start_heartbeat_server()
        started = time.monotonic()
        connection = self.connect(server)
        connection.expect_line(PING, timeout=self.IDLE + 5)
        pinged = time.monotonic()
        self.assert_on_time("the ping", pinged - started, self.IDLE, scaled(0.5))
        connection.expect_eof(timeout=self.GRACE + 5)
        self.assert_on_time("the drop", time.monotonic() - pinged, self.GRACE, scaled(0.5))
        server.stdout.expect(PINGED % peer_of(connection))
        server.stdout.expect(DROPPED % peer_of(connection))

    def test_a_client_that_talks_keeps_its_connection(self):
        # A line every 0.4 s for 2.8 s: nearly three IDLEs, more than IDLE + GRACE, and not
        # one ping, let alone a drop.
        server = self.start_heartbeat_server()
        connection = self.connect(server)
        for number in range(7):
            connection.send_line("line %d" % number)
            connection.expect_line("line %d" % number)
            time.sleep(0.4)  # pace: a client that talks, never silent for IDLE
        self.assertFalse([line for line in server.stdout.lines if "silent" in line
                          or "dropped" in line], server.stdout.text())

    def test_any_byte_after_the_ping_keeps_the_client_and_starts_its_silence_again(self):
        server = self.start_heartbeat_server()
        connection = self.connect(server)
        for answer in ("* pong", "anything at all"):
            connection.expect_line(PING, timeout=self.IDLE + 5)
            answered = time.monotonic()
            connection.send_line(answer)
            connection.expect_line(answer)
        connection.expect_line(PING, timeout=self.IDLE + 5)  # a new IDLE after the answer
        self.assert_on_time("the next ping", time.monotonic() - answered, self.IDLE,
                            scaled(0.5))
        self.assertFalse([line for line in server.stdout.lines if "dropped" in line],
                         server.stdout.text())

    def test_the_lesson_client_answers_pings_and_stays_without_printing_them(self):
        server = self.start_heartbeat_server()
        client = self.start_client([server.host, str(server.port)], keep_stdin_open=True)
        client.stdout.expect(r"^connected to ")
        peer = server.stdout.expect(r"^client connected from (\S+)$").group(1)
        for _ in range(3):  # three pings answered: three IDLEs, each longer than GRACE
            server.stdout.expect(PINGED % re.escape(peer), timeout=self.IDLE + 5)
        client.write(b"still here\n")
        client.stdout.expect(r"^still here$")
        client.close_stdin()
        self.assertEqual(client.wait(), 0, client.stderr.text())
        self.assertEqual(client.stdout.lines[1:], ["still here"], "pings and pongs are not "
                         "printed")
        self.assertFalse([line for line in server.stdout.lines if "dropped" in line],
                         server.stdout.text())


class FrozenPeerTests(DeadPeerTestCase):
    """A frozen peer (SIGSTOP) sends nothing, but its kernel still acknowledges every segment
    and keepalive probe: only the heartbeat finds it."""

    def test_a_frozen_client_is_found_by_the_heartbeat_not_by_keepalive(self):
        # Keepalive 1,1,1 would end a connection whose peer does not answer after 2 s; the
        # heartbeat (IDLE 2, GRACE 2) drops after 4 s. A drop after 4 s for want of an answer
        # to the ping, and no "timed out", says keepalive's probes were answered.
        self.require_signals()
        server = self.start_server(["0", "127.0.0.1", "2", "2", "1,1,1"])
        client = self.start_client([server.host, str(server.port)], keep_stdin_open=True)
        self.addCleanup(lambda: client.running() and os.kill(client.pid, signal.SIGCONT))
        client.stdout.expect(r"^connected to ")
        peer = server.stdout.expect(r"^client connected from (\S+)$").group(1)
        accepted = time.monotonic()
        os.kill(client.pid, signal.SIGSTOP)
        server.stdout.expect(DROPPED % re.escape(peer), timeout=10)
        self.assert_on_time("the drop", time.monotonic() - accepted, 4, scaled(0.6))
        self.assertFalse([line for line in server.stderr.lines if "timed out" in line],
                         "keepalive must not find a frozen peer:\n" + server.stderr.text())


class PulledCable:
    """Three network namespaces: the server's (10.16.0.1), a switch (a bridge) and the
    client's (10.16.0.2), joined by two veth pairs. pull() sets the switch's port to the
    client down: nothing more reaches the client, no FIN or RST tells the server, and the
    server's own link stays up, as when a cable is pulled further along. (A single veth pair
    with one end down takes the other end's carrier too: the server's kernel then knows its
    link is down, which a real pulled cable does not tell it.) Addresses live only in the
    namespaces, deleted when the test ends, passed or failed."""

    SERVER_ADDRESS, CLIENT_ADDRESS = "10.16.0.1", "10.16.0.2"

    def __init__(self, test):
        self.server_side = NetworkNamespace(test)  # skips, saying why, if it cannot be made
        self.switch = NetworkNamespace(test)
        self.client_side = NetworkNamespace(test)
        ip = self.server_side.ip

        def run(namespace, *args):
            subprocess.run([ip, "-n", namespace.name] + list(args), check=True)
        run(self.switch, "link", "add", "name", "bridge0", "type", "bridge")
        for side, port, address in ((self.server_side, "to-server", self.SERVER_ADDRESS),
                                    (self.client_side, "to-client", self.CLIENT_ADDRESS)):
            run(side, "link", "add", "cable", "type", "veth", "peer", "name", port, "netns",
                self.switch.name)
            run(self.switch, "link", "set", port, "master", "bridge0")
            run(self.switch, "link", "set", port, "up")
            run(side, "addr", "add", address + "/24", "dev", "cable")
            run(side, "link", "set", "cable", "up")
        run(self.switch, "link", "set", "bridge0", "up")
        self.pull = lambda: run(self.switch, "link", "set", "to-client", "down")

    def connect(self, test, server):
        """A connection from the client's namespace to the server, one line echoed."""
        sock = self.client_side.socket()
        test.addCleanup(sock.close)
        connection = Connection(server.address, sock=sock)
        connection.send_line("before the cable is pulled")
        connection.expect_line("before the cable is pulled")
        return connection


class PulledCableTests(DeadPeerTestCase):
    """A peer that vanishes (power off, cable pulled) sends nothing at all: keepalive finds
    it when the connection is idle, TCP_USER_TIMEOUT when data waits to be acknowledged."""

    def test_a_pulled_cable_is_found_by_keepalive_within_its_configured_time(self):
        # Keepalive 1,1,3: probes after 1 s idle, every 1 s, 3 unanswered: ETIMEDOUT at 4 s
        # after the last packet. The heartbeat is 60 s away, so it is not what finds it.
        cable = PulledCable(self)
        server = self.start_server(["0", cable.SERVER_ADDRESS, "60", "10", "1,1,3"],
                                   namespace=cable.server_side)
        connection = cable.connect(self, server)
        last_packet = time.monotonic()
        cable.pull()
        server.stderr.expect(TIMED_OUT % re.escape("%s:%d" % connection.sock.getsockname()),
                             timeout=8, what="the server's stderr")
        found = time.monotonic() - last_packet
        self.assert_on_time("keepalive's verdict", found, 4, 1.0 * max(1, scaled(1)))
        server.stdout.expect(r"^client %s:\d+ disconnected$" % re.escape(cable.CLIENT_ADDRESS))
        print("\npulled cable found by keepalive after %.2f s (configured 4 s)" % found)

    def test_unacknowledged_data_is_found_by_the_user_timeout(self):
        # The server is stopped while the client's line arrives (its kernel acknowledges it),
        # the cable is pulled, the server goes on: its echo is never acknowledged. Keepalive
        # is off and the heartbeat 60 s away: only TCP_USER_TIMEOUT (2000 ms) can end it.
        self.require_signals()
        cable = PulledCable(self)
        server = self.start_server(["0", cable.SERVER_ADDRESS, "60", "10", "off", "2000"],
                                   namespace=cable.server_side)
        self.addCleanup(lambda: server.running() and os.kill(server.pid, signal.SIGCONT))
        connection = cable.connect(self, server)
        os.kill(server.pid, signal.SIGSTOP)
        connection.send_line("an echo that will never arrive")
        import fcntl
        import termios
        import struct
        unacknowledged = lambda: struct.unpack("i", fcntl.ioctl(  # noqa: E731
            connection.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        wait_until(lambda: unacknowledged() == 0, 5, "the server's kernel to take the line")
        cable.pull()
        echoed = time.monotonic()
        os.kill(server.pid, signal.SIGCONT)
        server.stderr.expect(TIMED_OUT % re.escape("%s:%d" % connection.sock.getsockname()),
                             timeout=8, what="the server's stderr")
        found = time.monotonic() - echoed
        self.assert_on_time("the user timeout", found, 2, 1.0 * max(1, scaled(1)))
        print("\nunacknowledged echo found by the user timeout after %.2f s (configured 2 s)"
              % found)


    def test_a_pulled_cable_ends_the_lesson_client_by_its_own_keepalive(self):
        # The other way round: the server vanishes for the client, which nothing is typed
        # into. Its keepalive (1,1,3) ends its wait in poll() with ETIMEDOUT after 4 s.
        cable = PulledCable(self)
        server = self.start_server(["0", cable.SERVER_ADDRESS, "60"],
                                   namespace=cable.server_side)
        argv = cable.client_side.command_prefix() + command_for(
            self.program("client"), [cable.SERVER_ADDRESS, str(server.port), "1,1,3"])
        client = self._track(lambda: Program(argv, keep_stdin_open=True))
        client.stdout.expect(r"^connected to ")
        last_packet = time.monotonic()
        server.stdout.expect(r"^client connected from ")
        cable.pull()
        self.assertEqual(client.wait(8), 1, "a client whose server vanished fails")
        found = time.monotonic() - last_packet
        self.assertIn("client: recv: Connection timed out", client.stderr.lines)
        self.assert_on_time("the client's keepalive", found, 4, 1.0 * max(1, scaled(1)))


class IdleTimerTests(DeadPeerTestCase):
    """1,000 idle clients: between deadlines the server sleeps in poll() until the next one,
    using no CPU, and each client is pinged and dropped on time."""

    COUNT, IDLE, GRACE = 1000, 3, 1

    def test_a_thousand_idle_clients_cost_no_cpu_between_deadlines_and_are_dropped_on_time(self):
        self.require_linux_proc()
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < self.COUNT + 100:  # the soft limit only, never the hard one
            if hard != resource.RLIM_INFINITY and hard < self.COUNT + 100:
                self.skipTest("needs %d descriptors; the hard limit is %d" % (self.COUNT + 100,
                                                                             hard))
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.COUNT + 100, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        server = self.start_server(["0", "127.0.0.1", str(self.IDLE), str(self.GRACE)])
        server_soft, server_hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        if server_soft < self.COUNT + 100:
            resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (self.COUNT + 100, server_hard))
        sockets, connected = [], []
        first = time.monotonic()
        for _ in range(self.COUNT):
            sock = socket.create_connection(server.address[:2], timeout=scaled(10))
            self.addCleanup(sock.close)
            connected.append(time.monotonic())
            sockets.append(sock)
        for _ in sockets:
            server.stdout.expect(CONNECTED)

        # Between deadlines: no CPU, asleep in poll() with the time to the first deadline.
        share = idle_cpu_share(server.pid, 0.5)
        looked = time.monotonic()
        with open("/proc/%d/syscall" % server.pid) as syscall:
            fields = syscall.read().split()
        self.assertLess(share, 0.01, "%.1f%% of a core while nothing is due" % (share * 100))
        if fields[0] == "7":  # poll(entries, count, timeout) on x86-64: the timeout is readable
            timeout_ms = int(fields[3], 16)
            earliest = (first + self.IDLE - looked) * 1000 - 20
            self.assertTrue(earliest <= timeout_ms <= self.IDLE * 1000 + 20,
                            "poll()'s timeout is %d ms; the first deadline was %.0f-%d ms away"
                            % (timeout_ms, earliest, self.IDLE * 1000))

        # Every ping and every drop, timed at the client's end.
        pinged, dropped = [None] * self.COUNT, [None] * self.COUNT
        selector = selectors.DefaultSelector()
        self.addCleanup(selector.close)
        for number, sock in enumerate(sockets):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, number)
        deadline = time.monotonic() + scaled(self.IDLE + self.GRACE + 10)
        left = self.COUNT
        while left and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                number, now = key.data, time.monotonic()
                try:
                    data = key.fileobj.recv(4096)
                except ConnectionResetError:
                    data = b""
                if data and pinged[number] is None:
                    pinged[number] = now
                elif not data:
                    dropped[number] = now
                    selector.unregister(key.fileobj)
                    left -= 1
        self.assertEqual(left, 0, "%d clients were never dropped" % left)
        # Early is measured from the connection (a ping is seen late when this loop is busy,
        # which would make the drop look early), late from the ping as this loop saw it.
        ping_late = [pinged[n] - connected[n] - self.IDLE for n in range(self.COUNT)]
        drop_early = [dropped[n] - connected[n] - self.IDLE - self.GRACE
                      for n in range(self.COUNT)]
        drop_late = [dropped[n] - pinged[n] - self.GRACE for n in range(self.COUNT)]
        for what, early, late in (("a ping", ping_late, ping_late),
                                  ("a drop", drop_early, drop_late)):
            self.assertGreaterEqual(min(early), -EARLY, "%s came %.3f s early"
                                    % (what, -min(early)))
            self.assertLessEqual(max(late), scaled(0.3), "%s came %.2f s late" % (what, max(late)))
        for _ in sockets:  # each drop was said, for that reason
            server.stdout.expect(DROPPED % r"127\.0\.0\.1:\d+")
        print("\n1,000 idle clients: %.2f%% of a core between deadlines; pings late by %.3f to "
              "%.3f s, drops by %.3f to %.3f s" % (share * 100, min(ping_late), max(ping_late),
                                                   min(drop_early), max(drop_late)))


class WrongProgramTests(MutationChecks):
    """Each wrong copy of the lesson's programs (tests/variants/16-*.variant) fails the test
    that names its mistake."""

    def test_a_server_that_never_drops_after_the_heartbeat_fails(self):
        self.assert_suite_fails(
            ["test_lesson16.HeartbeatTests", "test_lesson16.FrozenPeerTests"],
            ["test_a_silent_client_is_pinged_after_idle_then_dropped_after_grace",
             "test_a_frozen_client_is_found_by_the_heartbeat_not_by_keepalive"],
            server=self.variant_path("16-never-drops"))

    def test_a_server_whose_timer_ignores_activity_drops_a_talking_client(self):
        self.assert_suite_fails(
            ["test_lesson16.HeartbeatTests"], ["test_a_client_that_talks_keeps_its_connection"],
            server=self.variant_path("16-activity-ignored"))

    def test_a_server_on_a_fixed_one_second_tick_fails(self):
        self.assert_suite_fails(
            ["test_lesson16.IdleTimerTests"],
            ["test_a_thousand_idle_clients_cost_no_cpu_between_deadlines_and_are_dropped_on_time"],
            server=self.variant_path("16-fixed-tick"))

    def test_a_server_without_keepalive_misses_a_pulled_cable(self):
        if not linux_proc_available() or os.geteuid() != 0:
            self.skipTest("the pulled-cable test needs root and Linux")
        self.assert_suite_fails(
            ["test_lesson16.PulledCableTests"],
            ["test_a_pulled_cable_is_found_by_keepalive_within_its_configured_time"],
            server=self.variant_path("16-no-keepalive"))

    def test_a_server_without_a_user_timeout_misses_unacknowledged_data(self):
        if not sys.platform.startswith("linux") or os.geteuid() != 0:
            self.skipTest("the pulled-cable test needs root and Linux")
        self.assert_suite_fails(
            ["test_lesson16.PulledCableTests"],
            ["test_unacknowledged_data_is_found_by_the_user_timeout"],
            server=self.variant_path("16-no-user-timeout"))

    def test_a_client_that_does_not_answer_pings_is_dropped(self):
        self.assert_suite_fails(
            ["test_lesson16.HeartbeatTests"],
            ["test_the_lesson_client_answers_pings_and_stays_without_printing_them"],
            client=self.variant_path("16-client-no-pong"))
