"""polling - measurements of a polling server, shared by lessons 04 and 05 and the benchmark.

A polling server pauses POLL-MS after each round that found nothing to do. Two numbers
show the price of that pause, and both are measured here the same way everywhere:
  idle_cpu_share()    CPU time the server uses while nobody talks to it (Linux /proc)
  round_trip_times()  how long each of a series of paced lines waits for its answer
and one helper drives a server's sends to "would block":
  push_without_reading()  sends far more than the socket buffers hold before reading any

Standard library only; labtest.py starts the programs.
"""
import os
import platform
import random
import select
import socket
import statistics
import threading
import time

from labtest import cpu_seconds, scaled


def fine_cpu_seconds(pid):
    """CPU time of all pid's threads, in nanosecond steps from /proc/PID/task/*/schedstat
    where the kernel keeps it, else in clock ticks (10 ms) from /proc/PID/stat."""
    try:
        total = 0
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as schedstat:
                total += int(schedstat.read().split()[0])  # ns spent running
        return total / 1e9
    except (OSError, ValueError, IndexError):
        return cpu_seconds(pid)


def idle_cpu_share(pid, seconds):
    """Share of one core (0.0-1.0) process pid used during the next `seconds` seconds."""
    cpu_before, wall_before = fine_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)  # measure: the window the process is watched over, not a wait
    return (fine_cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)


# The system calls a paused server sleeps in (glibc's nanosleep() is clock_nanosleep).
SLEEP_SYSCALLS = {"x86_64": {35, 230}, "aarch64": {101, 115}}


def sleep_syscalls():
    """Numbers of nanosleep and clock_nanosleep here, or None on an unknown machine."""
    return SLEEP_SYSCALLS.get(platform.machine())


def blocked_call_samples(pid, count, gap):
    """Looks count times, gap seconds apart, at which system call pid's main thread is
    waiting in (/proc/PID/syscall); returns the numbers seen, leaving out moments when
    it was running."""
    seen = []
    for _ in range(count):
        with open("/proc/%d/syscall" % pid) as syscall:
            fields = syscall.read().split()
        if fields and fields[0].isdigit():
            seen.append(int(fields[0]))
        time.sleep(gap)  # pace: samples spread over the loop's rounds
    return seen


def round_trip_times(sock, count, spread):
    """Sends count lines on a connected socket, each after a pause, and returns how long
    each waited for its answer (seconds, in sending order).

    The pauses are spread evenly over 0..spread seconds, in a shuffled order: with spread
    equal to the server's POLL-MS, the lines arrive at every phase of its sleep, so the
    delays spread over 0..POLL-MS (median about half of it) instead of all arriving at
    the same moment of its cycle."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pauses = [spread * (number + 0.5) / count for number in range(count)]
    random.Random(count).shuffle(pauses)  # a fixed order: every run measures the same way
    buffer = b""
    times = []
    for number, pause in enumerate(pauses):
        time.sleep(pause)  # pace: each line reaches the server at another point of its pause
        line = b"round trip %d\n" % number
        started = time.perf_counter()
        sock.sendall(line)
        while b"\n" not in buffer:
            chunk = sock.recv(4096)
            if not chunk:
                raise AssertionError("the server closed the connection during round trip %d"
                                     % number)
            buffer += chunk
        times.append(time.perf_counter() - started)
        answer, buffer = buffer.split(b"\n", 1)
        if answer + b"\n" != line:
            raise AssertionError("expected the answer %r, got %r" % (line, answer))
    return times


def median_ms(times):
    return statistics.median(times) * 1000


def percentile_ms(times, share):
    """The value below which `share` (0-1) of times fall, nearest rank, in milliseconds."""
    ordered = sorted(times)
    rank = max(0, min(len(ordered) - 1, int(round(share * len(ordered))) - 1))
    return ordered[rank] * 1000


def numbered_lines(total_bytes, line_length=100):
    """Lines of line_length bytes (newline included), each starting with its number."""
    count = total_bytes // line_length
    filler = b"." * (line_length - 11)
    return b"".join(b"%09d %s\n" % (number, filler) for number in range(count))


def wait_readable(sock, timeout=10.0):
    """Waits until bytes have arrived on sock, without reading them."""
    readable, _, _ = select.select([sock], [], [], scaled(timeout))
    if not readable:
        raise AssertionError("nothing arrived within %.1fs" % scaled(timeout))


def describe_difference(expected, received):
    """Where received first differs from expected, shown as the lines around that place."""
    if received == expected:
        return "no difference"
    at = next((index for index, (want, got) in enumerate(zip(expected, received))
               if want != got), min(len(expected), len(received)))
    start = expected.rfind(b"\n", 0, at) + 1
    return ("%d bytes expected, %d received; first difference at byte %d: expected %r, "
            "got %r" % (len(expected), len(received), at, expected[start:start + 60],
                        received[start:start + 60]))


def push_without_reading(sock, data, stall_seconds=0.5, timeout=120.0):
    """Sends data from a thread without reading, until the sends stop making progress for
    stall_seconds (the server no longer reads: its answers have filled every buffer) or
    all is sent; then half-closes and reads every answer until the server closes.

    Returns (stalled, sent_before_reading, received bytes)."""
    sock.settimeout(scaled(timeout))
    progress = {"sent": 0}
    failure = []

    def sender():
        try:
            view = memoryview(data)
            while progress["sent"] < len(data):
                progress["sent"] += sock.send(view[progress["sent"]:progress["sent"] + 65536])
            sock.shutdown(socket.SHUT_WR)  # all sent: the server answers the rest, closes
        except OSError as error:
            failure.append(error)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    last_seen = -1
    while thread.is_alive() and progress["sent"] != last_seen:
        last_seen = progress["sent"]
        thread.join(stall_seconds)  # pace: look again after the stall window
    stalled = thread.is_alive()
    sent_before_reading = progress["sent"]
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except OSError as error:  # a timeout, or a reset from a server that gave up
            raise AssertionError("reading the answers failed after %d bytes: %s"
                                 % (sum(map(len, chunks)), error)) from None
        if not chunk:
            break
        chunks.append(chunk)
    thread.join(scaled(timeout))
    if failure:
        raise AssertionError("sending failed after %d bytes: %s"
                             % (progress["sent"], failure[0]))
    return stalled, sent_before_reading, b"".join(chunks)


class PollIntervalChecks:
    """Mix into a polling lesson's test class: a reply waits at most about POLL-MS, and a
    longer POLL-MS delays replies more (the trade lesson 04 measures)."""

    def test_the_reply_delay_stays_within_the_interval(self):
        server = self.start_server(["0", "127.0.0.1", "50"])
        connection = self.connect(server)
        median = median_ms(round_trip_times(connection.sock, 20, 0.050))
        self.assertGreaterEqual(median, 10, "lines arriving during a 50 ms pause wait for its "
                                "end: about 25 ms on average, not %.1f ms" % median)
        self.assertLess(median, 50 + scaled(50), "median %.1f ms" % median)

    def test_a_longer_interval_adds_more_delay(self):
        server = self.start_server(["0", "127.0.0.1", "200"])
        connection = self.connect(server)
        median = median_ms(round_trip_times(connection.sock, 20, 0.200))
        self.assertGreaterEqual(median, 50, "a 200 ms pause should delay a reply about "
                                "100 ms on average, not %.1f ms" % median)
        self.assertLess(median, 200 + scaled(100), "median %.1f ms" % median)


class PollIntervalArgumentCheck:
    """Mix into a polling lesson's command-line tests: POLL-MS must be 0 to 10000."""

    def test_server_rejects_a_bad_poll_interval(self):
        for value in ("abc", "-5", "10001"):
            self.check_usage_error("server", ["0", "127.0.0.1", value], value)
