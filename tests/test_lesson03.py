"""Lesson 03 - the iterative server: the claims of lessons/03-iterative-server/README.md."""
import socket
import time

from labtest import (DefaultArgumentChecks, EchoClientLoopChecks, HostileClientChecks,
                     LabTestCase, LINE_MAX, NameChecks, OneAtATimeChecks, OutOfDescriptorsCheck,
                     TOO_LONG_REPLY, open_descriptor_count, under_emulator)

LESSON = "03-iterative-server"


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


class IterativeTests(OneAtATimeChecks, LabTestCase):
    """One client at a time, for ever: the next one waits, then is served."""
    LESSON = LESSON

    def test_the_client_program_talks_to_it(self):
        server = self.start_server()
        status, out, err = self.run_program(self.program("client"),
                                            ["127.0.0.1", str(server.port)], b"one\ntwo\n")
        self.assertEqual((status, out[1:]), (0, ["one", "two"]), "stderr: %s" % err)


class HostileClientTests(HostileClientChecks, LabTestCase):
    """Nothing one client does ends the server: the next client is always served."""
    LESSON = LESSON

    def test_half_a_line_then_close(self):
        connection = self.connect(self.server)
        connection.send(b"no newline")
        connection.close()
        self.assert_next_client_served()

    def test_an_over_long_line_is_answered_and_the_client_served_on(self):
        connection = self.connect(self.server)
        connection.send(b"q" * 5000 + b"\nafter\n")
        connection.expect_line(TOO_LONG_REPLY)
        connection.expect_line("after")
        connection.close()
        self.assert_next_client_served()

    def test_a_line_of_exactly_the_limit_is_echoed_and_one_byte_more_is_refused(self):
        # The limit counts the line without its end: 1024 bytes with "\n" or with "\r\n"
        # (which fills the reader's 1026 bytes) are echoed; 1025 bytes with "\n" fit in the
        # reader too, but are over the limit.
        connection = self.connect(self.server)
        at_limit = b"L" * LINE_MAX
        connection.send(at_limit + b"\n")
        connection.expect_line(at_limit)
        connection.send(at_limit + b"\r\n")
        connection.expect_line(at_limit)
        connection.send(at_limit + b"M\n")
        connection.expect_line(TOO_LONG_REPLY)
        connection.send_line("after")
        connection.expect_line("after")
        connection.close()
        self.assert_next_client_served()

    def test_a_client_that_never_reads_then_resets(self):
        connection = self.connect(self.server)
        connection.sock.settimeout(0.5)
        try:
            while True:
                connection.sock.send(b"x" * 1000 + b"\n")
        except socket.timeout:
            pass  # both buffers full: the server is blocked sending to us
        connection.reset()
        self.assert_next_client_served()
        # It was blocked in send() when the reset came: that call fails and is named.
        self.server.stderr.expect(r"^server: send 127\.0\.0\.1:\d+: ", what="the failed send")


class ResourceTests(OutOfDescriptorsCheck, LabTestCase):
    LESSON = LESSON

    def test_clients_that_come_and_go_leave_no_descriptor_and_no_warning_behind(self):
        # Each served client's socket is closed once it leaves (an iterative server that
        # forgot would run out of descriptors after about a thousand clients), and a client
        # that says goodbye is no failure: nothing on stderr.
        self.require_linux_proc()
        server = self.start_server()
        before = open_descriptor_count(server.pid)
        for number in range(20):
            connection = self.connect(server)
            connection.send_line("client %d" % number)
            connection.expect_line("client %d" % number)
            connection.close()
            server.stdout.expect(r"^client 127\.0\.0\.1:\d+ disconnected$")
        self.assertEqual(open_descriptor_count(server.pid), before, "descriptors left open")
        self.assertEqual(server.stderr.text(), "", "warnings for clients that said goodbye")


class AddressTests(LabTestCase):
    """getaddrinfo: IPv6, names, and SO_REUSEADDR on restart."""
    LESSON = LESSON

    def test_ipv6_loopback(self):
        if not ipv6_loopback_works():
            self.skipTest("this machine has no IPv6 loopback")
        server = self.start_server(["0", "::1"])
        self.assertEqual((server.host, server.family), ("::1", socket.AF_INET6))
        connection = self.connect(server)
        connection.send_line("over IPv6")
        connection.expect_line("over IPv6")
        connection.close()
        status, out, err = self.run_program(self.program("client"),
                                            ["::1", str(server.port)], b"client six\n")
        self.assertEqual((status, out), (0, ["connected to [::1]:%d" % server.port,
                                             "client six"]), "stderr: %s" % err)

    def test_localhost_works_whichever_address_it_resolves_to(self):
        server = self.start_server(["0", "localhost"])
        status, out, err = self.run_program(self.program("client"),
                                            ["localhost", str(server.port)], b"by name\n")
        self.assertEqual((status, out[1:]), (0, ["by name"]), "stderr: %s" % err)
        self.assertRegex(out[0], r"^connected to (127\.0\.0\.1|\[::1\]):%d$" % server.port)

    def test_a_restarted_server_binds_at_once_despite_time_wait(self):
        if under_emulator():
            self.skipTest("a program killed under Wine leaves its sockets to wineserver, which "
                          "closes them when it notices, so the server's side cannot be made "
                          "to close first on cue; checked natively")
        server = self.start_server()
        port = server.port
        connection = self.connect(server)
        connection.send_line("before the restart")
        connection.expect_line("before the restart")
        server.kill()  # the server's side closes first, so its port enters TIME_WAIT
        connection.expect_eof()
        connection.close()
        with socket.socket() as plain:  # without SO_REUSEADDR the bind fails: proof
            with self.assertRaises(OSError, msg="expected TIME_WAIT to hold the port"):
                plain.bind(("127.0.0.1", port))
        restarted = self.start_server([str(port)])
        self.assertEqual(restarted.port, port)
        connection = self.connect(restarted)
        connection.send_line("after the restart")
        connection.expect_line("after the restart")

    def test_an_unknown_host_name_is_a_clear_error(self):
        for role, args in (("server", ["0", "no-such-host.invalid"]),
                           ("client", ["no-such-host.invalid", "5050"])):
            status, out, err = self.run_program(self.program(role), args)
            self.assertEqual(status, 1, "%s: %s" % (role, err))
            self.assertRegex("\n".join(err), r"^%s: getaddrinfo no-such-host\.invalid: " % role)


class NameTests(NameChecks, LabTestCase):
    """The getaddrinfo loops written out in server.c and client.c: a name's addresses in
    turn, the socket of one that failed closed before the next is tried."""
    LESSON = LESSON


class ClientTests(EchoClientLoopChecks, LabTestCase):
    """Lesson 02's client loop, now lab_echo_stdin() in common/, as lessons 03-11 use it."""
    LESSON = LESSON


class CommandLineTests(DefaultArgumentChecks, LabTestCase):
    LESSON = LESSON
