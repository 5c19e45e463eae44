"""Lesson 02 - byte streams and framing: the claims of lessons/02-byte-streams/README.md."""
import socket
import time

from labtest import (EchoClientLoopChecks, IPv4CommandLineChecks, LabTestCase, LINE_MAX,
                     OneClientOnlyCheck, TOO_LONG_REPLY, under_emulator)

LESSON = "02-byte-streams"


class FramingTests(LabTestCase):
    """The server answers each line with that line, however the bytes are cut."""
    LESSON = LESSON

    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.connection = self.connect(self.server)
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_slowly(self, data):
        for byte in data:
            self.connection.send(bytes([byte]))
            time.sleep(0.005)  # pace: each byte leaves in its own segment

    def test_one_byte_at_a_time_is_answered_once_the_line_is_whole(self):
        # A server that treats each recv() as a message answers "h" at once: caught here.
        self.send_slowly(b"hel")
        self.connection.expect_silence(0.3)
        self.send_slowly(b"lo\n")
        self.connection.expect_line("hello")

    def test_many_lines_in_one_write_get_one_answer_each_in_order(self):
        lines = [("line %d " % number) * 5 for number in range(200)]
        self.connection.send("".join(line + "\n" for line in lines).encode())
        for line in lines:
            self.connection.expect_line(line)

    def test_lines_cut_across_writes_at_any_place(self):
        for part in (b"one\ntw", b"o\nthr", b"ee\n", b"fo", b"ur\nfive\n"):
            self.connection.send(part)
            time.sleep(0.01)  # pace: separate segments
        for word in ("one", "two", "three", "four", "five"):
            self.connection.expect_line(word)

    def test_telnet_line_ends_are_accepted_and_answered_with_a_plain_newline(self):
        self.connection.send(b"hi\r\n")
        self.connection.sock.settimeout(5)
        self.assertEqual(self.connection.sock.recv(100), b"hi\n")

    def test_bytes_are_not_c_strings_a_zero_byte_is_echoed(self):
        self.connection.send(b"a\x00b\n")
        self.connection.expect_line(b"a\x00b")

    def test_a_line_of_exactly_the_limit_is_echoed(self):
        self.connection.send(b"x" * LINE_MAX + b"\r\n")
        self.connection.expect_line(b"x" * LINE_MAX)

    def test_an_over_long_line_gets_the_documented_answer_and_service_goes_on(self):
        for length in (LINE_MAX + 1, LINE_MAX * 10, 100000):
            self.connection.send(b"y" * length + b"\n")
            self.connection.expect_line(TOO_LONG_REPLY)
            self.connection.send_line("still there?")
            self.connection.expect_line("still there?")

    def test_a_line_without_end_is_cut_off_at_the_limit_not_stored(self):
        # Memory per connection is bounded: the answer comes as soon as the limit is
        # passed, before the line's "\n" - a server that stores it all answers only then.
        self.connection.send(b"m" * (LINE_MAX * 5))
        self.connection.expect_line(TOO_LONG_REPLY)
        self.connection.send(b"m" * 1000 + b"\nafter\n")
        self.connection.expect_line("after")

    def test_no_bytes_beyond_the_line_are_sent(self):
        # The seed's send(s, buf, BUFSIZ, 0) sends the whole buffer, garbage and all.
        self.connection.send(b"short\n")
        self.connection.expect_line("short")
        self.connection.expect_silence(0.3)


class OneClientTests(OneClientOnlyCheck, LabTestCase):
    """The server serves one client, survives its misbehaviour, then exits."""
    LESSON = LESSON

    def test_server_exits_cleanly_when_its_client_leaves(self):
        server = self.start_server()
        connection = self.connect(server)
        connection.send_line("bye")
        connection.expect_line("bye")
        connection.close()
        server.stdout.expect(r"^client 127\.0\.0\.1:\d+ disconnected$")
        self.assertEqual(server.wait(), 0)
        # A client that says goodbye is no failure: nothing is warned about.
        self.assertEqual(server.stderr.text(), "", "stderr after a clean end of file")

    def test_connect_and_close_at_once(self):
        server = self.start_server()
        self.connect(server).close()
        self.assertEqual(server.wait(), 0)

    def test_reset_in_the_middle_of_a_line(self):
        server = self.start_server()
        connection = self.connect(server)
        server.stdout.expect(r"^client connected from ")  # accepted: now reset mid-line
        connection.send(b"half a li")
        connection.reset()
        self.assertEqual(server.wait(), 0, "stderr:\n%s" % server.stderr.text())
        if not under_emulator():  # Wine's recv() may read a reset as end of file (tests/README)
            server.stderr.expect(r"^server: recv 127\.0\.0\.1:\d+: ", what="the reset, named")

    def test_half_a_line_then_silence_gets_no_answer_and_no_crash(self):
        server = self.start_server()
        connection = self.connect(server)
        connection.send(b"no end of line")
        connection.expect_silence(0.5)
        self.assertTrue(server.running())
        connection.send(b" - now it ends\n")
        connection.expect_line("no end of line - now it ends")

    def test_a_client_that_never_reads_does_not_crash_the_server(self):
        server = self.start_server()
        connection = self.connect(server)
        connection.sock.settimeout(0.5)
        sent = 0
        try:  # the server's answers fill both buffers, then its send blocks: fine
            while sent < 8 * 1024 * 1024:
                sent += connection.sock.send(b"z" * 1000 + b"\n")
        except socket.timeout:
            pass
        self.assertGreater(sent, 100000, "the buffers should take a good deal first")
        connection.reset()
        self.assertEqual(server.wait(), 0, "stderr:\n%s" % server.stderr.text())
        # It was blocked in send() when the reset came: that call fails and is named.
        server.stderr.expect(r"^server: send 127\.0\.0\.1:\d+: ", what="the failed send, named")


class ClientTests(EchoClientLoopChecks, LabTestCase):
    """The client sends each line and prints exactly the server's answer."""
    LESSON = LESSON


class CommandLineTests(IPv4CommandLineChecks, LabTestCase):
    LESSON = LESSON
