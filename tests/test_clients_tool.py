"""tests/clients.py, the guides' many-clients tool, reports what a server really sent back:
its burst mode against lesson 11's edge-triggered server (every line back), against a
server that does not drain (a few lines back), and with lines over the limit."""
import os
import subprocess
import sys
import unittest

from labtest import LabTestCase, TESTS_DIR, peer_path, scaled

LABEL = "harness"
TOOL = os.path.join(TESTS_DIR, "clients.py")


class BurstModeTests(LabTestCase):
    LESSON = "11-epoll"
    LINUX_ONLY = True
    SERVER_ARGS = ("0", "127.0.0.1", "edge")

    def burst(self, server, *arguments):
        """Runs the tool against server; returns (exit status, stdout lines)."""
        run = subprocess.run([sys.executable, TOOL, server.host, str(server.port)]
                             + list(arguments), capture_output=True, text=True,
                             timeout=scaled(20))
        self.assertEqual(run.stderr, "")
        return run.returncode, run.stdout.splitlines()

    def test_every_line_of_each_burst_comes_back(self):
        server = self.start_server()
        status, lines = self.burst(server, "--count", "3", "--burst", "40", "--line-bytes", "500")
        self.assertEqual(lines, ["3 clients connected to 127.0.0.1:%d (burst)" % server.port,
                                 "3 clients, each 40 lines of 500 bytes in one write:",
                                 "3 clients (1-3): every line back, as sent"])
        self.assertEqual(status, 0)
        server.stdout.expect(r"^client 127\.0\.0\.1:\d+ disconnected$", scaled(5))
        self.assertEqual(len([line for line in server.stdout.lines
                              if line.startswith("client connected from")]), 3)

    def test_a_server_that_does_not_drain_is_reported_with_what_came_back(self):
        server = self.start_server(path=peer_path("broken_epoll_no_drain.py"))
        status, lines = self.burst(server, "--count", "2", "--burst", "40", "--line-bytes", "500",
                                   "--hold", "1")
        self.assertEqual(lines[:2], ["2 clients connected to 127.0.0.1:%d (burst)" % server.port,
                                     "2 clients, each 40 lines of 500 bytes in one write:"])
        self.assertRegex("\n".join(lines[2:]), r"^2 clients \(1-2\): [1-9]\d? of 40 lines back$")
        self.assertEqual(status, 1)

    def test_lines_over_the_limit_are_reported_with_the_servers_answer(self):
        server = self.start_server()
        status, lines = self.burst(server, "--count", "1", "--burst", "2", "--line-bytes", "2000")
        self.assertEqual(lines[1:], ["1 client, each 2 lines of 2000 bytes in one write:",
                                     "1 client (1): 0 of 2 lines back, and "
                                     "'error: line too long (limit 1024 bytes)'"])
        self.assertEqual(status, 1)


if __name__ == "__main__":
    unittest.main()
