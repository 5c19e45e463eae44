"""Lesson 01 - blocking one-to-one chat: the claims of lessons/01-blocking-chat/README.md."""
import socket
import time

from labtest import IPv4CommandLineChecks, LabTestCase, LINE_MAX, OneClientOnlyCheck, under_emulator

LESSON = "01-blocking-chat"


class ChatTests(OneClientOnlyCheck, LabTestCase):
    LESSON = LESSON

    def start_pair(self):
        """A server and a client whose stdin the test types into, line by line."""
        server = self.start_server(keep_stdin_open=True)
        client = self.start_client([server.host, str(server.port)], keep_stdin_open=True)
        server.stdout.expect(r"^client connected from 127\.0\.0\.1:\d+$")
        client.stdout.expect(r"^connected to 127\.0\.0\.1:%d$" % server.port)
        return server, client

    def test_lines_go_both_ways_and_replies_come_from_the_server_stdin(self):
        server, client = self.start_pair()
        for number in range(3):
            client.write(b"question %d\n" % number)
            server.stdout.expect(r"^client: question %d$" % number)
            server.write(b"answer %d from the keyboard\n" % number)
            client.stdout.expect(r"^server: answer %d from the keyboard$" % number)

    def test_an_empty_line_is_a_line_typed_at_either_side(self):
        server, client = self.start_pair()
        client.write(b"\n")
        server.stdout.expect(r"^client: $")
        server.write(b"\n")  # an empty reply, not the end of input
        client.stdout.expect(r"^server: $")
        client.write(b"still here\n")
        server.stdout.expect(r"^client: still here$")

    def test_server_end_of_input_ends_the_chat_on_both_sides(self):
        server, client = self.start_pair()
        client.write(b"are you there?\n")
        server.stdout.expect(r"^client: are you there\?$")
        server.close_stdin()
        server.stdout.expect(r"^end of input: closing the chat$")
        self.assertEqual(server.wait(), 0)
        client.stdout.expect(r"^server closed the connection$")
        self.assertEqual(client.wait(), 0)

    def test_client_end_of_input_ends_the_chat_on_both_sides(self):
        server, client = self.start_pair()
        client.write(b"one line\n")
        server.write(b"one reply\n")
        client.stdout.expect(r"^server: one reply$")
        client.close_stdin()
        self.assertEqual(client.wait(), 0)
        server.stdout.expect(r"^client closed the connection$")
        self.assertEqual(server.wait(), 0)

    def test_a_line_split_across_sends_and_telnet_line_ends_are_one_line(self):
        server = self.start_server(stdin_data=b"ok\n")
        connection = self.connect(server)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (b"hel", b"lo, wor", b"ld\r\n"):  # telnet ends lines with \r\n
            connection.send(piece)
            time.sleep(0.05)  # pace: each piece leaves in its own segment
        server.stdout.expect(r"^client: hello, world$")
        connection.expect_line("ok")

    def test_an_over_long_line_is_cut_not_overflowed(self):
        server = self.start_server(stdin_data=b"ok\n")
        connection = self.connect(server)
        connection.send(b"x" * (LINE_MAX * 4) + b"\n")
        match = server.stdout.expect(r"^client: (x+)$")
        self.assertEqual(len(match.group(1)), LINE_MAX)
        connection.expect_line("ok")

    def test_a_client_that_resets_ends_the_server_cleanly(self):
        server = self.start_server(keep_stdin_open=True)
        connection = self.connect(server)
        server.stdout.expect(r"^client connected from ")  # accepted: now reset mid-line
        connection.send(b"half a li")
        connection.reset()
        status = server.wait()
        self.assertEqual(status, 0, "no crash: stderr was\n%s" % server.stderr.text())
        if not under_emulator():  # Wine's recv() may read a reset as end of file (tests/README)
            server.stderr.expect(r"^server: recv 127\.0\.0\.1:\d+: ", what="the reset, named")

    def test_a_reply_to_a_client_that_has_reset_is_named_not_retried(self):
        server = self.start_server(keep_stdin_open=True)
        connection = self.connect(server)
        connection.send_line("hello")
        server.stdout.expect(r"^client: hello$")
        connection.reset()
        server.write(b"too late\n")
        # send() fails if the reset came first, else the recv() after it does; a server that
        # ignores a failed send() says neither, one that retries it never ends.
        server.stderr.expect(r"^server: (send|recv) 127\.0\.0\.1:\d+: ")
        self.assertEqual(server.wait(), 0)

    def test_server_prints_the_listening_line_with_the_real_port(self):
        server = self.start_server()
        self.assertEqual(server.host, "127.0.0.1")
        self.assertNotEqual(server.port, 0, "port 0 means any free port: print the real one")
        self.connect(server).close()


class ClientTests(LabTestCase):
    """The client against a server of the test's own: long lines cut, errors named."""
    LESSON = LESSON

    def test_an_over_long_line_from_the_server_is_cut_not_overflowed(self):
        client, served = self.client_and_a_server_of_our_own()
        client.write(b"hi\n")
        served.expect_line("hi")
        served.send(b"y" * (LINE_MAX * 4) + b"\n")
        match = client.stdout.expect(r"^server: (y+)$")
        self.assertEqual(len(match.group(1)), LINE_MAX)

    def test_a_reset_by_the_server_is_named(self):
        if under_emulator():
            self.skipTest("under Wine a reset is sometimes read as end of file")
        client, served = self.client_and_a_server_of_our_own()
        client.write(b"hi\n")
        served.expect_line("hi")
        served.reset()
        client.stderr.expect(r"^client: recv 127\.0\.0\.1:\d+: ")
        self.assertEqual(client.wait(), 0, "the chat is over; the error was said")

    def test_a_line_typed_after_the_server_reset_is_named_not_retried(self):
        if under_emulator():
            self.skipTest("under Wine a reset is sometimes read as end of file")
        client, served = self.client_and_a_server_of_our_own()
        client.stdout.expect(r"^connected to ")
        served.reset()
        client.write(b"too late\n")
        client.stderr.expect(r"^client: (send|recv) 127\.0\.0\.1:\d+: ")
        self.assertEqual(client.wait(), 0)


class CommandLineTests(IPv4CommandLineChecks, LabTestCase):
    LESSON = LESSON
