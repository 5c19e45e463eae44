"""Lesson 12 - chat room: the claims of lessons/12-chat-room/README.md and the room protocol of
LAB-DESIGN (names guestN, /nick, /who, /quit, room lines starting with "* ", errors starting
with "error: ", a line to every other client as "NAME: text", a slow receiver dropped)."""
import re
import socket
import threading
import time

from labtest import (LINE_MAX, TOO_LONG_REPLY, CommandLineChecks, LabTestCase, MutationChecks,
                     linux_proc_available, open_descriptor_count, rss_bytes, sanitizer, scaled,
                     under_emulator, wait_until)
from polling import idle_cpu_share, median_ms

LESSON = "12-chat-room"
WELCOME = r"^\* you are (guest\d+) "


class RoomTestCase(LabTestCase):
    LESSON = LESSON

    def join(self, server):
        """Connects, reads the welcome line and returns (connection, name)."""
        connection = self.connect(server)
        match = re.match(WELCOME, connection.recv_line().decode())
        self.assertIsNotNone(match, "a newcomer is told its guest name in a '* ' line")
        return connection, match.group(1)

    def join_many(self, server, count):
        """count clients, each having seen every later one join; returns [(connection, name)]."""
        members = []
        for _ in range(count):
            connection, name = self.join(server)
            for other, _ in members:
                other.expect_line("* %s joined" % name)
            members.append((connection, name))
        return members


class RoomTests(RoomTestCase):
    """The room protocol, line by line."""

    def test_a_line_goes_to_every_other_client_and_not_back(self):
        server = self.start_server()
        (first, first_name), (second, _), (third, _) = self.join_many(server, 3)
        first.send_line("hello, room")
        second.expect_line("%s: hello, room" % first_name)
        third.expect_line("%s: hello, room" % first_name)
        first.expect_silence(0.2)

    def test_twenty_clients_see_every_line_of_every_other_once_in_order(self):
        server = self.start_server()
        members = self.join_many(server, 20)
        for number in range(10):
            for connection, _ in members:
                connection.send_line("line %d" % number)
        for receiver, receiver_name in members:
            seen = {name: [] for _, name in members if name != receiver_name}
            for _ in range(10 * 19):
                sender, _, text = receiver.recv_line().decode().partition(": ")
                self.assertIn(sender, seen, "a line from %r reached %s" % (sender, receiver_name))
                seen[sender].append(text)
            for sender, texts in seen.items():
                self.assertEqual(texts, ["line %d" % number for number in range(10)],
                                 "%s's lines as %s saw them" % (sender, receiver_name))
            receiver.expect_silence(0.05)

    def test_nick_renames_and_everybody_is_told(self):
        server = self.start_server()
        (first, first_name), (second, _) = self.join_many(server, 2)
        first.send_line("/nick alice")
        first.expect_line("* %s is now alice" % first_name)
        second.expect_line("* %s is now alice" % first_name)
        first.send_line("now with a name")
        second.expect_line("alice: now with a name")

    def test_a_taken_or_invalid_name_is_refused_with_an_error(self):
        server = self.start_server()
        (first, _), (second, second_name) = self.join_many(server, 2)
        first.send_line("/nick alice")
        first.recv_line()
        second.recv_line()
        for bad in ("alice", "", "has space", "x" * 17, "semi;colon"):
            second.send_line("/nick " + bad)
            self.assertTrue(second.recv_line().startswith(b"error: "), "/nick %r" % bad)
        second.send_line("still %s" % second_name)
        first.expect_line("%s: still %s" % (second_name, second_name))

    def test_a_guest_name_taken_with_nick_is_not_given_to_a_newcomer(self):
        server = self.start_server()
        (first, first_name), = self.join_many(server, 1)
        next_guest = "guest%d" % (int(first_name[5:]) + 1)
        first.send_line("/nick " + next_guest)
        first.expect_line("* %s is now %s" % (first_name, next_guest))
        _, newcomer_name = self.join(server)
        self.assertNotEqual(newcomer_name, next_guest, "two clients named %s" % next_guest)

    def test_who_lists_the_room_and_unknown_commands_get_an_error(self):
        server = self.start_server()
        members = self.join_many(server, 3)
        connection = members[0][0]
        connection.send_line("/who")
        who = connection.recv_line().decode()
        self.assertTrue(who.startswith("* 3 here:"), who)
        self.assertEqual(sorted(who.split(":", 1)[1].split()), sorted(name for _, name in members))
        connection.send_line("/dance")
        self.assertTrue(connection.recv_line().startswith(b"error: "))

    def test_quit_says_bye_closes_and_the_others_are_told(self):
        server = self.start_server()
        (first, first_name), (second, _) = self.join_many(server, 2)
        first.send_line("/quit")
        first.expect_line("* bye")
        first.expect_eof()
        second.expect_line("* %s left" % first_name)

    def test_nothing_sent_after_quit_reaches_the_room(self):
        server = self.start_server()
        (first, first_name), (second, _) = self.join_many(server, 2)
        first.send(b"/quit\nsaid after quit\n")
        first.expect_line("* bye")
        second.expect_line("* %s left" % first_name)
        second.expect_silence(0.1)

    def test_an_over_long_line_gets_the_usual_answer_and_reaches_nobody(self):
        server = self.start_server()
        (first, _), (second, second_name) = self.join_many(server, 2)
        first.send(b"m" * (LINE_MAX * 3) + b"\n")
        first.expect_line(TOO_LONG_REPLY)
        first.send_line("short")
        second.recv_line()  # "NAME: short": nothing of the long line came before it
        second.expect_silence(0.1)

    def test_half_a_line_then_close_sends_nothing_to_the_others(self):
        server = self.start_server()
        (first, first_name), (second, _) = self.join_many(server, 2)
        first.send(b"half a line without its end")
        first.close()
        second.expect_line("* %s left" % first_name)
        second.expect_silence(0.1)

    def test_two_hundred_clients_join_and_leave_at_once(self):
        server = self.start_server()
        watcher, _ = self.join(server)
        crowd = [self.connect(server) for _ in range(200)]
        for number, connection in enumerate(crowd):
            connection.reset() if number % 2 else connection.close()
        last, last_name = self.join(server)  # accepted after every one of the crowd
        joined = left = 0
        while True:
            line = watcher.recv_line().decode()
            if line == "* %s joined" % last_name:
                break
            joined += line.endswith(" joined")
            left += line.endswith(" left") or "disconnected" in line
        while left < joined:
            line = watcher.recv_line().decode()
            left += line.endswith(" left") or "disconnected" in line
        if not under_emulator():  # Wine's accept() refuses a connection already reset
            self.assertEqual(joined, 200)
        last.send_line("/who")
        who = last.recv_line()
        while b" here:" not in who:  # the crowd's leaving, heard by the last one too
            who = last.recv_line()
        self.assertTrue(who.startswith(b"* 2 here:"), "only the two who stayed: %r" % who)


class IdleTests(RoomTestCase):
    """A quiet room costs no CPU: the loop asks for writability only while lines wait."""

    def test_an_idle_room_of_twenty_sleeps_and_uses_no_cpu(self):
        self.require_linux_proc()
        server = self.start_server()
        members = self.join_many(server, 20)
        members[0][0].send_line("one line, then quiet")
        for connection, _ in members[1:]:
            connection.recv_line()
        share = idle_cpu_share(server.pid, 1.0)
        self.assertLess(share, 0.01, "an idle room of 20: %.1f%% of a core" % (share * 100))


class SlowReceiverTests(RoomTestCase):
    """A client that does not read is dropped when its queue passes the limit; the others
    are told and keep receiving; memory stays bounded."""

    PUSHED_BYTES = 20 * 1024 * 1024  # far beyond what loopback buffers for one socket

    def push(self, sender, total, line_bytes=1000):
        """Sends total bytes of lines from sender in a thread, at most about 40 MB a second
        (the readers here are Python: faster, and a reader falls behind and is dropped too)."""
        burst = (b"p" * (line_bytes - 1) + b"\n") * 100

        def flood():
            for _ in range(total // len(burst)):
                sender.sock.sendall(burst)
                time.sleep(0.0025)  # pace the flood, not a wait for the server
        return self.in_thread(flood)

    def test_a_client_that_never_reads_is_dropped_and_the_others_keep_up(self):
        # One client floods 20 MB of lines; one never reads; one reads everything and
        # measures how late the probe lines of a fourth arrive. The silent one must be
        # dropped (its kernel buffers take ~4 MB on loopback, then its queue passes 64 KiB)
        # and nobody else may wait for it.
        server = self.start_server()
        (sender, _), (reader, _), (prober, prober_name), (silent, silent_name) = \
            self.join_many(server, 4)
        rss_before = rss_bytes(server.pid) if linux_proc_available() and not sanitizer() else None
        dropped_line = ("* %s was disconnected: too slow" % silent_name).encode()
        dropped = threading.Event()
        delays = []

        def read_everything(connection, measure):
            # Whole chunks, split once: line by line, Python would fall behind the flood.
            pending = b""
            while not (dropped.is_set() and len(delays) >= 20):
                chunk = connection.sock.recv(1 << 16)
                self.assertTrue(chunk, "the room closed a reader's connection")
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if measure and line.startswith(prober_name.encode() + b": probe "):
                        delays.append(time.monotonic() - float(line.split()[-1]))
                    if line == dropped_line:
                        dropped.set()
        self.in_thread(read_everything, reader, True)
        self.in_thread(read_everything, prober, False)  # the prober must not fall behind
        self.push(sender, self.PUSHED_BYTES)
        for _ in range(20):
            prober.send_line("probe %.6f" % time.monotonic())
            time.sleep(0.05)  # pace: probes spread over the flood
        self.assertTrue(dropped.wait(scaled(10)), "the silent client was never dropped")
        wait_until(lambda: len(delays) >= 20, 30, "the probe lines to reach the reader")
        sender.send_line("the end")  # wakes both reading threads, which now stop
        self.join_threads()
        self.assertLess(max(delays), scaled(1.0), "the others' lines arrive within a second: "
                        "worst %.3f s, median %.1f ms" % (max(delays), median_ms(delays)))
        if rss_before is not None:
            growth = rss_bytes(server.pid) - rss_before
            self.assertLess(growth, 8 << 20, "RSS grew by %d KB" % (growth >> 10))


class SharingTests(RoomTestCase):
    """A line is stored once, however many clients it waits for."""

    def test_a_line_queued_for_thirty_slow_clients_is_stored_once(self):
        # 30 clients stop reading; 6 MB of lines go to them. Loopback's buffers take about
        # 4 MB per socket, the rest waits in the room's queues (limit raised to 4 MiB so
        # nobody is dropped): ~2 MB of lines. Stored once, that is ~2 MB of the server's
        # memory and a 16-byte node per line per client; a copy per client would be ~60 MB.
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer keeps freed memory in quarantine: RSS is not the "
                          "program's own")
        server = self.start_server(["0", "127.0.0.1", str(4 << 20)])
        (sender, _), = self.join_many(server, 1)
        slow = [self.join(server)[0] for _ in range(30)]
        sender.sock.settimeout(scaled(60))
        before = rss_bytes(server.pid)
        line = b"s" * 999 + b"\n"
        for _ in range(6000):
            sender.sock.sendall(line)
        sender.send_line("/who")  # answered after every line before it was queued
        while not sender.recv_line(timeout=60).startswith(b"* 31 here:"):
            pass
        growth = rss_bytes(server.pid) - before
        self.assertLess(growth, 12 << 20, "6 MB said to 30 slow clients grew the server by %d "
                        "KB: is each line copied per receiver?" % (growth >> 10))
        self.assertTrue(slow)


class LeakTests(RoomTestCase):
    """Clients that come and go leave no descriptor behind."""

    def test_no_descriptor_is_left_behind_after_300_clients(self):
        self.require_linux_proc()
        server = self.start_server()
        watcher, _ = self.join(server)
        baseline = open_descriptor_count(server.pid)
        for number in range(300):
            connection = self.connect(server)
            connection.recv_line()
            if number % 3 == 0:
                connection.send_line("/quit")
            connection.reset() if number % 3 == 1 else connection.close()
        wait_until(lambda: open_descriptor_count(server.pid) <= baseline, 10,
                   "the server's descriptors to come back to %d" % baseline)
        self.assertTrue(watcher)


class WrongServerTests(MutationChecks):
    """Wrong rooms fail the tests that name their mistake."""

    def test_a_room_with_blocking_sends_stalls_and_fails(self):
        self.assert_suite_fails(
            ["test_lesson12.SlowReceiverTests"],
            ["test_a_client_that_never_reads_is_dropped_and_the_others_keep_up"],
            server=self.variant_path("12-blocking-broadcast"))

    def test_a_room_without_a_queue_limit_fails(self):
        self.assert_suite_fails(
            ["test_lesson12.SlowReceiverTests"],
            ["test_a_client_that_never_reads_is_dropped_and_the_others_keep_up"],
            server=self.variant_path("12-unbounded-queue"))

    def test_a_room_always_asking_for_writability_spins(self):
        self.assert_suite_fails(
            ["test_lesson12.IdleTests"], ["test_an_idle_room_of_twenty_sleeps_and_uses_no_cpu"],
            server=self.variant_path("12-always-writable"))

    def test_a_room_copying_each_line_per_receiver_fails(self):
        self.assert_suite_fails(
            ["test_lesson12.SharingTests"], ["test_a_line_queued_for_thirty_slow_clients_is_stored_once"],
            server=self.variant_path("12-copy-per-receiver"))


class CommandLineTests(CommandLineChecks, LabTestCase):
    LESSON = LESSON

    def test_server_rejects_a_bad_queue_limit(self):
        self.check_usage_error("server", ["0", "127.0.0.1", "lots"], "lots")


class ClientTests(RoomTestCase):
    """The client prints the room's lines as they come, while its own input stays open, and
    sends what is typed; end of input leaves the room."""

    def test_lines_from_the_room_appear_while_nothing_is_typed_and_typed_lines_go_out(self):
        server = self.start_server()
        member, member_name = self.join(server)
        client = self.start_client([server.host, str(server.port)], keep_stdin_open=True)
        client.stdout.expect(r"^connected to ")
        client_name = re.match(WELCOME, client.stdout.expect(WELCOME).group(0)).group(1)
        member.expect_line("* %s joined" % client_name)
        member.send_line("are you there?")  # nothing typed: a lock-step client would not print
        client.stdout.expect(r"^%s: are you there\?$" % member_name)
        client.write(b"yes, and typing\n")
        member.expect_line("%s: yes, and typing" % client_name)
        client.write(b"a last line without its end")
        client.close_stdin()
        member.expect_line("%s: a last line without its end" % client_name)
        member.expect_line("* %s left" % client_name)
        self.assertEqual(client.wait(), 0, "leaving at end of input is a normal end")
