"""Lesson 01 - blocking one-to-one chat: the claims of lessons/01-blocking-chat/README.md."""
import socket
import time

from labtest import CommandLineChecks, LabTestCase, LINE_MAX

LESSON = "01-blocking-chat"


class ChatTests(LabTestCase):
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

    def test_server_prints_the_listening_line_with_the_real_port(self):
        server = self.start_server()
        self.assertEqual(server.host, "127.0.0.1")
        self.assertNotEqual(server.port, 0, "port 0 means any free port: print the real one")
        self.connect(server).close()


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON

    def test_server_rejects_a_name_in_this_ipv4_only_lesson(self):
        self.check_usage_error("server", ["0", "localhost"], "localhost")
