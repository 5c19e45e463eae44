#!/usr/bin/env python3
"""poll_cost.py - what the pause of a polling server costs: idle CPU against reply delay.

usage: python3 tests/bench/poll_cost.py [--build-dir DIR] [--lesson 04|05|08|10|11]
                                        [--intervals MS,MS,...] [--idle-seconds N]
                                        [--silent-clients K] [--lines M]

Starts lesson 04's or 05's server (default 05) from the build tree (default build/, as
tests/run.py does) once per POLL-MS value (default 0,1,10,100) on 127.0.0.1 with port 0,
and measures for each (lessons 08, 10 and 11 wait for readiness instead of pausing: they
have no POLL-MS and get one row, measured the same way, for comparison):
  idle CPU      share of one core the server uses over N seconds (default 3) with no
                client, then with K silent clients connected (default 100 for lesson 05,
                1 for lesson 04, which serves one client at a time) - Linux /proc only;
  reply delay   median and 99th percentile round trip of M lines (default 100), each
                sent after a pause spread over 0..POLL-MS so that lines reach the server
                at every point of its sleep.
Prints one table row per interval. Loopback only; every server it starts is killed at the
end. Bounded: at most 10 intervals of 0-10000 ms, 30 idle seconds and 1000 lines each.
It is a measurement, not a test: CTest does not run it. Standard library only.
"""
import argparse
import os
import platform
import socket
import sys

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import labtest  # noqa: E402  (the harness starts and kills the servers)
import polling  # noqa: E402  (the same measurements the tests make)

LESSONS = {"04": "04-nonblocking-server", "05": "05-nonblocking-many", "08": "08-select",
           "10": "10-poll", "11": "11-epoll"}
EVENT_LOOPS = ("08", "10", "11")


def parse_arguments():
    parser = argparse.ArgumentParser(description="Idle CPU and reply delay of a polling "
                                     "server, for several POLL-MS values.")
    parser.add_argument("--build-dir", default=os.path.join(TESTS_DIR, "..", "build"),
                        help="build tree with lessons/NN-slug/server (default build/)")
    parser.add_argument("--lesson", choices=sorted(LESSONS), default="05")
    parser.add_argument("--intervals", default="0,1,10,100",
                        help="comma-separated POLL-MS values (default 0,1,10,100)")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--silent-clients", type=int, default=None)
    parser.add_argument("--lines", type=int, default=100)
    options = parser.parse_args()
    try:
        options.intervals = [int(value) for value in options.intervals.split(",")]
    except ValueError:
        parser.error("--intervals takes whole milliseconds, e.g. 0,1,10,100")
    if not 1 <= len(options.intervals) <= 10 or not all(
            0 <= value <= 10000 for value in options.intervals):
        parser.error("--intervals: 1 to 10 values of 0-10000 ms")
    if not 0.5 <= options.idle_seconds <= 30:
        parser.error("--idle-seconds: 0.5 to 30")
    if not 10 <= options.lines <= 1000:
        parser.error("--lines: 10 to 1000")
    if options.lesson in EVENT_LOOPS:
        options.intervals = [None]  # no pause to choose: the loop sleeps until a socket is ready
    if options.silent_clients is None:
        options.silent_clients = 1 if options.lesson == "04" else 100
    if not 0 <= options.silent_clients <= (1 if options.lesson == "04" else 200):
        parser.error("--silent-clients: 0 to 200 (lesson 04 serves only one at a time: 0-1)")
    os.environ["LAB_BUILD_DIR"] = os.path.abspath(options.build_dir)
    return options


def measure(path, interval, options):
    """One table row: (idle share, idle share with silent clients, median ms, p99 ms)."""
    arguments = ["0", "127.0.0.1"] + ([] if interval is None else [str(interval)])
    server = labtest.Server(labtest.command_for(path, arguments))
    connections = []
    try:
        can_read_proc = labtest.linux_proc_available()
        idle = polling.idle_cpu_share(server.pid, options.idle_seconds) if can_read_proc \
            else None
        for _ in range(options.silent_clients):
            connections.append(socket.create_connection(server.address))
        for _ in connections:
            server.stdout.expect(r"^client connected from ", 10, "the server's stdout")
        with_clients = polling.idle_cpu_share(server.pid, options.idle_seconds) \
            if can_read_proc and connections else None
        for connection in connections:
            connection.close()
        connections = []
        with socket.create_connection(server.address) as timed:
            timed.settimeout(labtest.scaled(30))
            if options.lesson == "04":
                server.stdout.expect(r"^client connected from ", 10, "the server's stdout")
            spread = 10 if interval is None else max(interval, 1)  # ms, as at POLL-MS 10
            times = polling.round_trip_times(timed, options.lines, spread / 1000)
        return (idle, with_clients, polling.median_ms(times),
                polling.percentile_ms(times, 0.99))
    finally:
        for connection in connections:
            connection.close()
        server.kill()


def percent(share):
    return "n/a" if share is None else "%.2f %%" % (share * 100)


def main():
    options = parse_arguments()
    lesson = LESSONS[options.lesson]
    path = labtest.program_path(lesson, "server")
    print("poll_cost: %s, %s, %s %s, %d CPUs, idle %.1f s, %d lines per interval"
          % (lesson, path, platform.system(), platform.release(),
             os.cpu_count() or 0, options.idle_seconds, options.lines))
    with_clients = "idle CPU, %d silent" % options.silent_clients
    print("%8s  %14s  %22s  %12s  %12s" % ("POLL-MS", "idle CPU", with_clients,
                                           "median RTT", "p99 RTT"))
    for interval in options.intervals:
        idle, busy_idle, median, p99 = measure(path, interval, options)
        print("%8s  %14s  %22s  %9.2f ms  %9.2f ms"
              % ("-" if interval is None else interval, percent(idle), percent(busy_idle),
                 median, p99), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
