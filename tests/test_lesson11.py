"""Lesson 11 - epoll (Linux only): the claims of lessons/11-epoll/README.md, in both modes."""
import resource
import socket
import time

from eventloop import EventLoopChecks, echo_rounds
from labtest import (CommandLineChecks, HostileClientChecks, LabTestCase, LoopBackoffCheck,
                     MutationChecks, QuietServerCheck, peer_path, rss_bytes, scaled)
from polling import median_ms, round_trip_times

LESSON = "11-epoll"
IDLE_CLIENTS = 10000
RSS_PER_IDLE_CLIENT_LIMIT = 2048  # bytes: the design card's bound


class LevelTriggeredTests(EventLoopChecks, LabTestCase):
    """The default: epoll reports a socket for as long as it is ready, as poll() does."""
    LESSON = LESSON
    LINUX_ONLY = True
    WAIT_CALLS = ("epoll_wait",)


class EdgeTriggeredTests(EventLoopChecks, LabTestCase):
    """EPOLLET: each change is reported once, so the round is repeated until idle."""
    LESSON = LESSON
    LINUX_ONLY = True
    WAIT_CALLS = ("epoll_wait",)
    SERVER_ARGS = ("0", "127.0.0.1", "edge")


class TenThousandIdleTests(LabTestCase):
    """10,000 idle connections cost at most 2 KB of the server's memory each, and an
    active client is still answered at once."""
    LESSON = LESSON
    LINUX_ONLY = True

    def check_ten_thousand(self, mode):
        self.require_linux_proc()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < IDLE_CLIENTS + 200:
            self.skipTest("needs %d descriptors; the hard limit is %d"
                          % (IDLE_CLIENTS + 200, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        server = self.start_server(["0", "127.0.0.1", mode])
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (IDLE_CLIENTS + 100,) * 2)
        active = self.connect(server)
        echo_rounds([active], tag="warm up")
        before = rss_bytes(server.pid)
        idle = []
        try:
            for _ in range(IDLE_CLIENTS):
                idle.append(socket.create_connection(server.address[:2], timeout=scaled(10)))
            echo_rounds([active], tag="after 10000")  # every idle one has been accepted
            per_client = (rss_bytes(server.pid) - before) / IDLE_CLIENTS
            times = round_trip_times(active.sock, 20, 0.02)
        finally:
            for sock in idle:
                sock.close()
        print("\n%s: %d idle clients, %.0f bytes of RSS each, median reply %.2f ms"
              % (mode, len(idle), per_client, median_ms(times)))
        self.assertLessEqual(per_client, RSS_PER_IDLE_CLIENT_LIMIT,
                             "RSS per idle client: %.0f bytes" % per_client)
        self.assertLess(median_ms(times), scaled(5), "median reply delay with 10,000 idle "
                        "clients: %.2f ms" % median_ms(times))

    def test_level_triggered(self):
        self.check_ten_thousand("level")

    def test_edge_triggered(self):
        self.check_ten_thousand("edge")


class QuietTests(QuietServerCheck, LabTestCase):
    LESSON = LESSON
    LINUX_ONLY = True


class HostileClientTests(HostileClientChecks, LabTestCase):
    LESSON = LESSON
    LINUX_ONLY = True


class EdgeTriggeredHostileClientTests(HostileClientChecks, LabTestCase):
    LESSON = LESSON
    LINUX_ONLY = True
    SERVER_ARGS = ("0", "127.0.0.1", "edge")


class ResourceTests(LoopBackoffCheck, LabTestCase):
    LESSON = LESSON
    LINUX_ONLY = True


class EdgeTriggeredResourceTests(LoopBackoffCheck, LabTestCase):
    LESSON = LESSON
    LINUX_ONLY = True
    SERVER_ARGS = ("0", "127.0.0.1", "edge")


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON
    LINUX_ONLY = True

    def test_server_rejects_a_bad_mode(self):
        self.check_usage_error("server", ["0", "127.0.0.1", "sideways"], "sideways")


class WrongServerTests(MutationChecks):
    """An edge-triggered loop that reads once per report leaves bytes unread for ever."""

    def test_an_edge_triggered_server_that_does_not_drain_fails(self):
        self.assert_suite_fails(
            ["test_lesson11.EdgeTriggeredTests.test_a_burst_bigger_than_one_read_is_answered_without_more_input"],
            ["test_a_burst_bigger_than_one_read_is_answered_without_more_input"],
            server=peer_path("broken_epoll_no_drain.py"))
