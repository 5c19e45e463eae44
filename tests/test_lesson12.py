"""Lesson 12 - chat room: the claims of lessons/12-chat-room/README.md and the room protocol of
LAB-DESIGN (names guestN, /nick, /who, /quit, room lines starting with "* ", errors starting
with "error: ", a line to every other client as "NAME: text", a slow receiver dropped)."""
import os
import re
import socket
import struct
import subprocess
import threading
import time

from labtest import (LINE_MAX, TOO_LONG_REPLY, CommandLineChecks, Connection, LabTestCase,
                     MutationChecks, NetworkNamespace, cpu_seconds, linux_proc_available,
                     open_descriptor_count, rss_bytes, sanitizer, scaled, under_emulator,
                     wait_until)
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
        longest = "Ab_-" * 4  # 16 characters: the longest name allowed
        second.send_line("/nick " + longest)
        first.expect_line("* %s is now %s" % (second_name, longest))

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

    def test_who_fills_its_line_with_whole_names_only(self):
        # /who says as many names as fit in one line. 60 members renamed so that, in the
        # order /who lists them (newest first), the first 59 fill the line to where one more
        # 16-character name would need its last byte: that name must be left out, not cut.
        server = self.start_server()
        members = [self.join(server)[0] for _ in range(60)]
        prefix = "* 60 here:"
        listed = list(reversed(members))
        names = ["%-16s" % ("n%d" % position) for position in range(59)]
        names = [name.replace(" ", "_") for name in names]
        names[58] = names[58][:LINE_MAX - 16 - len(prefix) - 17 * 58 - 1]
        names.append("last_name_16char")
        for member, name in zip(listed, names):
            member.send_line("/nick " + name)
            while not member.recv_line().endswith((" is now " + name).encode()):
                pass
        asker = members[0]
        asker.send_line("/who")
        line = asker.recv_line()
        while not line.startswith(prefix.encode()):
            line = asker.recv_line()
        self.assertLessEqual(len(line) + 1, LINE_MAX, "the /who line with its \\n")
        self.assertEqual(line.decode().split(":", 1)[1].split(), names[:59])

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


class QueueTests(RoomTestCase):
    """A client's queue is bounded to the byte, let go when the client goes, and after
    /quit it holds nothing but what was queued before."""

    WELCOME_LINE = b"* you are guest1 (/nick NAME, /who, /quit)\n"

    def test_a_queue_may_reach_the_limit_but_not_pass_it(self):
        # A newcomer's welcome is queued before anything is sent to it: with QUEUE-LIMIT its
        # exact length the newcomer stays; with one byte less it is dropped at once.
        server = self.start_server(["0", "127.0.0.1", str(len(self.WELCOME_LINE))])
        kept = self.connect(server)
        kept.expect_line(self.WELCOME_LINE.rstrip(b"\n"))
        kept.send_line("/who")
        kept.expect_line("* 1 here: guest1")
        server = self.start_server(["0", "127.0.0.1", str(len(self.WELCOME_LINE) - 1)])
        self.connect(server).expect_eof()
        server.stdout.expect(r"^guest1 dropped: too slow$")

    def test_with_a_limit_of_one_byte_every_newcomer_is_dropped_and_let_go(self):
        # The smallest limit the room takes: no welcome fits, so each newcomer is dropped as
        # it joins. 10,000 of them may not grow the server: the node queued for the welcome
        # and the client itself are freed (16 bytes kept per drop would be 300 KB here).
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer's quarantine keeps freed memory resident")
        server = self.start_server(["0", "127.0.0.1", "1"])

        def newcomers(count):
            for _ in range(count):
                sock = socket.create_connection(server.address[:2], timeout=scaled(10))
                while sock.recv(4096):  # nothing fits: the room closes at once
                    pass
                sock.close()
        newcomers(1000)  # the allocator's pools reach their working size
        before = rss_bytes(server.pid)
        newcomers(10000)
        growth = rss_bytes(server.pid) - before
        self.assertLess(growth, 160 * 1024, "resident memory grew by %d KB over 10,000 "
                        "newcomers dropped" % (growth // 1024))

    def room_with_small_send_buffers(self):
        """The room in a network namespace whose TCP send buffers are held at 16 KB: a client
        that does not read has lines waiting in the room's queue after some 25 KB, not after
        the ~4 MB loopback's growing buffers would take."""
        namespace = NetworkNamespace(self, tcp_wmem="4096 16384 16384")
        return namespace, self.start_server(namespace=namespace)

    def member(self, namespace, server, receive_buffer=None):
        sock = namespace.socket()
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        connection = Connection(server.address, sock=sock)
        self.addCleanup(connection.close)
        return connection, re.match(WELCOME, connection.recv_line().decode()).group(1)

    def fill_until_queued(self, sender):
        """Sends 50 KB of lines from sender: the silent client's kernel buffers take some
        25 KB, the rest waits in its queue (under the 64 KiB limit). /who is answered after
        every line before it has been queued."""
        sender.send((b"q" * 999 + b"\n") * 50)
        sender.send_line("/who")
        while b" here:" not in sender.recv_line():
            pass

    def test_after_quit_only_what_was_queued_before_is_sent(self):
        # The quitter does not read, so lines wait for it in the room when it sends /quit.
        # "/nick" and "/quit" in one send are carried out together: once the others hear of
        # the new name, the quit has happened, and a line said after it must not follow
        # "* bye".
        namespace, server = self.room_with_small_send_buffers()
        sender, _ = self.member(namespace, server)
        quitter, quitter_name = self.member(namespace, server, receive_buffer=4096)
        sender.expect_line("* %s joined" % quitter_name)
        self.fill_until_queued(sender)
        quitter.send(b"/nick quitter\n/quit\n")
        sender.expect_line("* %s is now quitter" % quitter_name)
        sender.send_line("said after the quit")
        received = bytearray()
        while True:
            chunk = quitter.sock.recv(65536)
            if not chunk:
                break
            received += chunk
        last_lines = bytes(received).rstrip(b"\n").split(b"\n")[-2:]
        self.assertEqual(last_lines[-1], b"* bye", "the last line after /quit")
        self.assertNotIn(b"said after the quit", received)

    def test_a_leaver_typing_on_while_its_queue_waits_costs_no_cpu(self):
        # After /quit the room reads nothing more from the leaver. Bytes it types on then sit
        # unread in its socket: the room must stop asking poll() about its input, or poll()
        # returns at once, for ever, until the leaver's queue is out.
        self.require_linux_proc()
        namespace, server = self.room_with_small_send_buffers()
        sender, _ = self.member(namespace, server)
        quitter, quitter_name = self.member(namespace, server, receive_buffer=4096)
        sender.expect_line("* %s joined" % quitter_name)
        self.fill_until_queued(sender)
        quitter.send(b"/nick quitter\n/quit\n")
        sender.expect_line("* %s is now quitter" % quitter_name)
        quitter.send(b"typed after the quit\n")
        share = idle_cpu_share(server.pid, 1.0)
        self.assertLess(share, 0.05, "while a leaver's queue waits: %.0f%% of a core"
                        % (share * 100))

    def test_memory_stays_flat_while_slow_clients_are_dropped_again_and_again(self):
        # Each round a client that does not read joins and is dropped with its queue full
        # (64 KiB of lines waiting): everything it held must be let go.
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer's quarantine keeps freed memory resident")
        namespace, server = self.room_with_small_send_buffers()
        sender, _ = self.member(namespace, server)

        def drop_one_slow_client():
            silent, silent_name = self.member(namespace, server, receive_buffer=4096)
            sender.expect_line("* %s joined" % silent_name)
            gone = ("* %s was disconnected: too slow" % silent_name).encode()
            line = b"d" * 999 + b"\n"
            dropped = False
            while not dropped:
                sender.send(line * 20)
                sender.send_line("/who")  # answered after the 20 lines: the rounds keep step
                answer = b""
                while b" here:" not in answer:
                    answer = sender.recv_line()
                    dropped = dropped or answer == gone
            silent.close()

        for _ in range(3):
            drop_one_slow_client()  # the allocator's pools reach their working size
        before = rss_bytes(server.pid)
        for _ in range(15):
            drop_one_slow_client()
        growth = rss_bytes(server.pid) - before
        self.assertLess(growth, 256 * 1024, "resident memory grew by %d KB over 15 slow clients "
                        "dropped" % (growth // 1024))


class MemoryTests(RoomTestCase):
    """What the room allocates for a line or a client is freed when it is done with."""

    def setUp(self):
        super().setUp()
        self.require_linux_proc()
        if sanitizer():
            self.skipTest("a sanitizer's quarantine keeps freed memory resident")

    def lines_delivered(self, server, talker, lines):
        """Lines from talker to a listener that then leaves, then as many said alone."""
        listener, listener_name = self.join(server)
        talker.expect_line("* %s joined" % listener_name)
        talker.send(b"".join(b"line %d\n" % number for number in range(lines)) + b"mark\n")
        while not listener.recv_line().endswith(b": mark"):
            pass
        listener.close()
        talker.expect_line("* %s left" % listener_name)
        talker.send(b"".join(b"alone %d\n" % number for number in range(lines)) + b"/who\n")
        while not talker.recv_line().startswith(b"* 1 here: "):
            pass

    def clients_come_and_go(self, server, talker, count):
        for _ in range(count):
            self.join(server)[0].close()
        left = 0
        while left < count:
            left += talker.recv_line().endswith(b" left")

    def test_memory_stays_flat_while_lines_pass_and_clients_come_and_go(self):
        # 20,000 lines delivered, 20,000 said to nobody, 1,000 clients joining and leaving:
        # a 16-byte queue node, a line or a 1 KB client never freed would grow the server by
        # 300 KB to 1 MB here.
        server = self.start_server()
        talker, _ = self.join(server)
        self.lines_delivered(server, talker, 2000)  # the allocator's pools reach their size
        self.clients_come_and_go(server, talker, 100)
        before = rss_bytes(server.pid)
        self.lines_delivered(server, talker, 20000)
        self.clients_come_and_go(server, talker, 1000)
        growth = rss_bytes(server.pid) - before
        self.assertLess(growth, 160 * 1024, "resident memory grew by %d KB" % (growth // 1024))


class ResourceTests(RoomTestCase):
    """Out of descriptors, the room backs off without sleeping on the clients it has."""

    def test_out_of_descriptors_the_room_talks_on_and_lets_the_newcomer_in_later(self):
        self.require_linux_proc()
        try:
            from resource import RLIMIT_NOFILE, prlimit
        except ImportError:
            self.skipTest("needs resource.prlimit (Linux)")
        server = self.start_server()
        (talker, talker_name), = self.join_many(server, 1)
        pid = server.pid
        descriptors = [int(name) for name in os.listdir("/proc/%d/fd" % pid)]
        soft, hard = prlimit(pid, RLIMIT_NOFILE)
        prlimit(pid, RLIMIT_NOFILE, (max(descriptors) + 2, hard))  # room for one more
        self.addCleanup(lambda: server.running() and prlimit(pid, RLIMIT_NOFILE, (soft, hard)))
        listener, listener_name = self.join(server)
        talker.expect_line("* %s joined" % listener_name)
        waiting = self.connect(server)  # queued by the kernel: no descriptor for accept()
        server.stderr.expect(r"^server: accept: Too many open files$")
        cpu_before, warnings_before = cpu_seconds(pid), len(server.stderr.lines)
        delays = []
        for number in range(20):
            started = time.monotonic()
            talker.send_line("line %d" % number)
            listener.expect_line("%s: line %d" % (talker_name, number))
            delays.append(time.monotonic() - started)
            time.sleep(0.05)  # pace: 1 s of talk while the newcomer waits
        warnings = len(server.stderr.lines) - warnings_before
        self.assertLess(median_ms(delays), scaled(5), "median delivery while out of descriptors")
        self.assertLess(warnings, 30, "accept() must pause between tries: %d warnings" % warnings)
        self.assertLess(cpu_seconds(pid) - cpu_before, 0.3, "CPU while out of descriptors")
        listener.close()  # a descriptor comes back: the newcomer gets in
        talker.expect_line("* %s left" % listener_name)
        self.assertIsNotNone(re.match(WELCOME, waiting.recv_line().decode()))


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

    def a_room_of_our_own(self, namespace=None, receive_buffer=None):
        """A listening socket standing in for the room, and the client connected to it (both
        inside namespace, if one is given)."""
        listener = namespace.socket() if namespace else socket.socket()
        self.addCleanup(listener.close)
        if receive_buffer:  # set before listen(): an accepted socket inherits it
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(scaled(10))
        client = self.start_client(["127.0.0.1", str(listener.getsockname()[1])],
                                   namespace=namespace, keep_stdin_open=True)
        room, _ = listener.accept()
        self.addCleanup(room.close)
        return room, client

    def test_a_line_too_long_from_the_room_is_named_not_printed(self):
        room, client = self.a_room_of_our_own()
        room.sendall(b"x" * (LINE_MAX * 2) + b"\nafter it\n")
        client.stdout.expect(r"^\(a line longer than %d bytes from the room\)$" % LINE_MAX)
        client.stdout.expect(r"^after it$")

    def test_a_reset_by_the_room_is_reported_with_the_call_and_exit_status_1(self):
        if under_emulator():
            # Wine's recv() on the client's polled socket returned 0 after the reset (the
            # client said "server closed the connection", exit 1) in 3 of 3 runs here.
            self.skipTest("under Wine a reset read after poll() looks like end of file")
        room, client = self.a_room_of_our_own()
        room.sendall(b"* you are guest1\n")
        client.stdout.expect(r"^\* you are guest1$")
        room.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        room.close()  # a reset, not an end of file
        client.stderr.expect(r"^client: recv: ")
        self.assertEqual(client.wait(), 1, "a reset is an error")

    def test_typing_faster_than_the_room_reads_loses_nothing(self):
        # 1.8 MB typed at once into a room that reads 4 KB at a time, in a network namespace
        # whose send buffers are held at 16 KB (on plain loopback the client's would grow and
        # take it all): the client's buffer of typed bytes fills to its last byte again and
        # again. It must then stop reading the keyboard (not take a read of 0 bytes for the
        # end of input) until the room catches up.
        namespace = NetworkNamespace(self, tcp_wmem="4096 16384 16384")
        room, client = self.a_room_of_our_own(namespace, receive_buffer=4096)
        typed = b"".join(b"typed line %06d\n" % number for number in range(100000))

        def type_everything():
            client.write(typed)
            client.close_stdin()
        self.in_thread(type_everything)
        received = bytearray()
        room.settimeout(scaled(10))
        while True:
            chunk = room.recv(4096)
            if not chunk:
                break
            received += chunk
            time.sleep(0.0005)  # pace: a room slower than the keyboard
        self.join_threads()
        self.assertEqual(len(received), len(typed), "bytes the room got before end of file")
        self.assertEqual(bytes(received), typed)
        room.close()  # the client left at its end of input: the room's close is expected
        self.assertEqual(client.wait(), 0, "leaving at end of input is a normal end")
        self.assertEqual(client.stderr.lines, [], "a normal end warns about nothing")

    def test_a_keyboard_that_cannot_be_read_is_named_and_the_client_leaves(self):
        # stdin a directory (client < /): read() fails with EISDIR. The client says so,
        # naming the call, and leaves the room as at the end of its input.
        self.require_linux_proc()
        server = self.start_server()
        member, _ = self.join(server)
        directory = os.open("/", os.O_RDONLY)
        self.addCleanup(os.close, directory)
        finished = subprocess.run([self.program("client"), server.host, str(server.port)],
                                  stdin=directory, capture_output=True, timeout=scaled(10))
        self.assertRegex(finished.stderr.decode(), r"(?m)^client: read stdin: ")
        self.assertEqual(finished.returncode, 0, "leaving at the end of input, as for Ctrl-D")
        self.assertRegex(member.recv_line().decode(), r"^\* guest\d+ joined$")
        self.assertRegex(member.recv_line().decode(), r"^\* guest\d+ left$")
