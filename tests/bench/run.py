#!/usr/bin/env python3
"""run.py - races every echo server of the lab side by side, with a libuv server as the
outside reference, lesson 12's chat room beside Redis pub/sub, and lesson 15's bulk transfer
beside iperf3; writes the results as JSON, CSV, Markdown tables and plots.

usage: python3 tests/bench/run.py [--build-dir build-bench] [--quick] [--out DIR]
                                  [--servers KEY,...] [--scenarios NAME,...]
                                  [--connections N,...] [--warmup S] [--window S]
                                  [--capacity N] [--idle-seconds S]
                                  [--fanout-receivers R] [--fanout-senders S,...]
                                  [--fanout-in-flight W,...] [--bulk-writes W,...]
                                  [--bulk-mib MIB] [--bulk-rounds N]
       python3 tests/bench/run.py --plot-only DIR     (draws the plots of DIR/results.json)

Build first, optimised and without sanitizers:
  cmake --preset bench && cmake --build --preset bench

Each cell of the matrix starts one server on 127.0.0.1 with port 0 (it waits for its
"listening on" line, raises its descriptor limit, and always kills it afterwards) and runs
tests/bench/loadgen against it. Scenarios (docs/benchmarks.md says what each figure means):
  throughput  N active connections (1, 10, 100, 1000), one request outstanding on each:
              requests per second and latency p50/p99/p99.9. Lesson 03 only at N = 1.
  mixed       10 active connections beside 990 idle ones: what idle clients cost the busy.
  capacity    idle connections opened until the server stops taking them or the bound
              (10,000): how many it held, how long opening them took, RSS per connection.
  idle-cpu    CPU the server uses while 100 connected clients say nothing.
  syscalls    system calls per request at N = 100, counted with strace -c -f. strace stops
              the server at every call: this is a count, never a speed.
  fanout      lesson 12's chat room and redis-server (pub/sub), each with R receivers (100)
              and S senders (1 and 4) run by tests/bench/fanout: each sender keeps W messages
              (1 and 8) on their way until every receiver has them. Deliveries per second,
              delivery latency p50/p99, the server's CPU. Without redis-server on PATH its
              cells are skipped, saying so.
  fanout-syscalls  system calls per delivery (strace -c -f) of both at R = 100, S = 1, W = 8.
  bulk        one connection on 127.0.0.1 sends a run of bytes in writes of W bytes (1 KiB,
              4 KiB, 16 KiB, 64 KiB, 128 KiB, 256 KiB, 1 MiB): lesson 15's client (FRAME-SIZE
              W, against its server, which sums every byte) and iperf3 3.x (-l W -n BYTES -J,
              against iperf3 -s -1 started for each run on a free port; run.py waits for its
              "Server listening" line). 4 GiB per run at W >= 16 KiB, 2 GiB at 4 KiB, 1 GiB at
              1 KiB (--bulk-mib); 3 rounds, the two programs interleaved (lesson 15 first in
              rounds 1 and 3, iperf3 in round 2); the median MB/s (10^6 bytes) of each, and
              lesson 15 / iperf3 per W. The lab's target: >= 0.95x at 128 KiB. Without iperf3
              on PATH its cells are skipped ("iperf3 not installed") and lesson 15 still runs.
Servers: 03, 05 (POLL-MS default and 0), 06, 07, 08, 10, 11 level, 11 edge, 17 io_uring
(skipped where liburing was not installed), libuv (keys below). Ratios compare each server
with lesson 11 level-triggered in the same run; in the fan-out, lesson 12 (key 12) with
Redis (key redis); in bulk, lesson 15 (key 15) with iperf3 (key iperf3). What the checksum
costs alone: tests/bench/adler_bench (docs/benchmarks.md).

--quick runs N = 1 and 10, short windows, a capacity bound of 100, a fan-out to 10 receivers,
bulk at 4 KiB and 128 KiB (64 and 128 MiB, one round) and no strace: it proves the benchmark
still works (CI runs it) in well under two minutes, and exits non-zero if any server failed
to run. All traffic stays on loopback; every part of a run is bounded.
Standard library only; the plots need matplotlib (Debian: python3-matplotlib), which it looks
for in this interpreter, then in /usr/bin/python3; without it the plots are skipped. In the
throughput plots a cell with starved, unanswered or failed connections is not on its server's
line but a numbered X, listed beside the plot; every legend stands outside the axes.
Why an event loop is as fast as it is (system calls, wake-ups, CPU per request):
tests/bench/loop_costs.py.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(BENCH_DIR)
SOURCE_DIR = os.path.dirname(TESTS_DIR)
sys.path.insert(0, TESTS_DIR)

import labtest  # noqa: E402  (starts the servers, waits for "listening on", kills them)
import polling  # noqa: E402  (the CPU measurement the tests and poll_cost.py use)

try:
    import resource  # Linux and macOS: raising a child's descriptor limit
except ImportError:  # pragma: no cover - Windows
    resource = None


class Entry:
    """One server of the race: how to start it and what to say about it."""

    def __init__(self, key, label, lesson, args=(), note="", one_at_a_time=False,
                 optional=False, default_from_help=None, help_option="--help"):
        self.key = key
        self.label = label
        self.lesson = lesson          # lessons/<lesson>/server, or None for the reference
        self.args = list(args)        # after "0 127.0.0.1"
        self.note = note
        self.one_at_a_time = one_at_a_time
        self.optional = optional      # a missing binary is skipped, not a failure
        self.default_from_help = default_from_help  # regex: the default shown in the label
        self.help_option = help_option              # what prints that default

    def path(self, build_dir):
        if self.lesson is None:
            return os.path.join(build_dir, "tests", "bench", "uv_echo_server")
        return os.path.join(build_dir, "lessons", self.lesson, "server")


class RedisEntry(Entry):
    """redis-server from the system's packages (Debian: redis-server), started by the
    driver on a free port of 127.0.0.1: the fan-out's outside reference."""

    def path(self, build_dir):
        return shutil.which("redis-server")


SERVERS = [
    Entry("03", "03 iterative", "03-iterative-server", one_at_a_time=True,
          note="serves one client at a time: measured at N = 1 only"),
    Entry("05", "05 non-blocking, POLL-MS {}", "05-nonblocking-many",
          default_from_help=r"POLL-MS \(default (\d+)",
          note="a table of 256 clients: more are turned away"),
    Entry("05-0ms", "05 non-blocking, POLL-MS 0", "05-nonblocking-many", ["0"],
          note="never pauses: busy even when idle"),
    Entry("06", "06 thread per client", "06-thread-per-client"),
    Entry("07", "07 thread pool, {} workers", "07-thread-pool", optional=True,
          default_from_help=r"WORKERS threads \(default (\d+)",
          note="each worker stays with its client: only WORKERS clients are served at "
               "once, 16 more wait, the rest are turned away"),
    Entry("08", "08 select", "08-select",
          note="FD_SETSIZE 1024: about 1020 clients at most"),
    Entry("10", "10 poll", "10-poll"),
    Entry("11-level", "11 epoll, level-triggered", "11-epoll", ["level"]),
    Entry("11-edge", "11 epoll, edge-triggered", "11-epoll", ["edge"]),
    Entry("17", "17 io_uring", "17-io-uring", optional=True,
          note="completion I/O: multishot accept and receive, provided buffers, one "
               "io_uring_enter() per turn; built only where liburing is installed"),
    Entry("uv", "libuv (reference)", None, optional=True,
          note="tests/bench/uv_echo_server.c: libuv's loop, not the lab's"),
]
REFERENCE = "11-level"
FANOUT_QUEUE_LIMIT = 1048576  # the room's QUEUE-LIMIT: far above the S x W lines in flight
FANOUT_SERVERS = [
    Entry("12", "12 chat room", "12-chat-room", [str(FANOUT_QUEUE_LIMIT)],
          note="lesson 12 with QUEUE-LIMIT %d; its senders also get each other's lines"
               % FANOUT_QUEUE_LIMIT),
    RedisEntry("redis", "Redis {} pub/sub (reference)", None, optional=True,
               default_from_help=r"v=(\S+)", help_option="--version",
               note="redis-server --save '' --appendonly no: one channel, receivers SUBSCRIBE, "
                    "senders PUBLISH"),
]
FANOUT_REFERENCE = "redis"


class IperfEntry(Entry):
    """iperf3 from the system's packages (Debian: iperf3), started by the driver for each run
    on a free port of 127.0.0.1: the bulk transfer's outside reference."""

    def path(self, build_dir):
        return shutil.which("iperf3")


BULK_SERVERS = [
    Entry("15", "15 bulk transfer", "15-bulk-transfer",
          note="client HOST PORT BYTES W: each send() is a 4-byte header and W bytes of "
               "payload; the server's recv() asks for up to 1 MiB and sums every byte "
               "(Adler-32); MB/s from the client's first send to the server's answer"),
    IperfEntry("iperf3", "iperf3 {} (reference)", None, optional=True,
               default_from_help=r"iperf (\S+)", help_option="--version",
               note="iperf3 -s -1, then iperf3 -c -l W -n BYTES -J: each write W bytes, "
                    "each read W bytes, nothing checked; MB/s from the receiver's "
                    "bits_per_second"),
]
BULK_REFERENCE = "iperf3"
BULK_HEADLINE = 128 * 1024  # the write size of the lab's target: lesson 15 >= 0.95x iperf3
BULK_TARGET = 0.95
SCENARIOS = ["throughput", "mixed", "capacity", "idle-cpu", "syscalls", "fanout",
             "fanout-syscalls", "bulk"]
DEFAULTS = {  # full run, then --quick
    "full": dict(connections=[1, 10, 100, 1000], warmup=2.0, window=5.0, mixed=(10, 990),
                 capacity=10000, hold=1.0, idle_seconds=3.0, syscall_n=100,
                 fanout_receivers=100, fanout_senders=[1, 4], fanout_in_flight=[1, 8],
                 bulk_writes=[1024, 4096, 16384, 65536, 131072, 262144, 1048576],
                 bulk_mib=4096, bulk_rounds=3, connect_timeout=10.0, scenarios=SCENARIOS),
    "quick": dict(connections=[1, 10], warmup=0.5, window=1.0, mixed=(10, 90),
                  capacity=100, hold=0.4, idle_seconds=0.5, syscall_n=100,
                  fanout_receivers=10, fanout_senders=[1], fanout_in_flight=[8],
                  bulk_writes=[4096, 131072], bulk_mib=128, bulk_rounds=1,
                  connect_timeout=1.0,
                  scenarios=["throughput", "mixed", "capacity", "idle-cpu", "fanout", "bulk"]),
}
FANOUT_SYSCALLS = (100, 1, 8)  # R, S, W of the fanout-syscalls scenario
IDLE_CPU_CLIENTS = 100
RSS_MIN_HELD = 10  # fewer held connections: a difference of a page or two, divided by 1-9
STRACE_NOTE = ("strace stops the server at every system call: these are counts per "
               "request, not a speed")


class CellFailed(Exception):
    """The server or the load generator did not run as it should: the run fails."""


class CellSkipped(Exception):
    """This cell cannot be measured here (no binary, no strace): said, not a failure."""


# ---- the command line -----------------------------------------------------------------

def parse_arguments():
    parser = argparse.ArgumentParser(
        description="Race every echo server of the lab with tests/bench/loadgen, and lesson "
                    "12's chat room beside Redis pub/sub with tests/bench/fanout.",
        epilog="servers: " + ", ".join(entry.key for entry in
                                       SERVERS + FANOUT_SERVERS + BULK_SERVERS)
               + "; scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--build-dir", default=os.path.join(SOURCE_DIR, "build-bench"),
                        help="build tree of the bench preset (default build-bench/)")
    parser.add_argument("--out", help="where the results go (default BUILD-DIR/bench-results)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run that proves the benchmark works (CI)")
    parser.add_argument("--servers", help="comma-separated keys (default: all)")
    parser.add_argument("--scenarios", help="comma-separated names (default: all; --quick "
                        "leaves out syscalls and fanout-syscalls)")
    parser.add_argument("--connections", help="active connections for throughput, e.g. "
                        "1,10,100 (each 1-10000)")
    parser.add_argument("--warmup", type=float, help="seconds before each window (0-10)")
    parser.add_argument("--window", type=float, help="seconds measured per cell (0.5-30)")
    parser.add_argument("--capacity", type=int, help="most connections the capacity "
                        "scenario opens (10-10000)")
    parser.add_argument("--idle-seconds", type=float, help="seconds of CPU watched in "
                        "idle-cpu (0.5-30)")
    parser.add_argument("--fanout-receivers", type=int, metavar="R", help="receivers in "
                        "the fanout scenario (1-2000)")
    parser.add_argument("--fanout-senders", metavar="S,...", help="senders in the fanout "
                        "scenario, e.g. 1,4 (each 1-64)")
    parser.add_argument("--fanout-in-flight", metavar="W,...", help="messages each fanout "
                        "sender keeps on their way, e.g. 1,8 (each 1-4096)")
    parser.add_argument("--bulk-writes", metavar="W,...", help="write sizes of the bulk "
                        "scenario, e.g. 4K,128K,1M (each 1 to 1M; K and M are 1024 and "
                        "1024^2)")
    parser.add_argument("--bulk-mib", type=int, metavar="MIB", help="MiB each bulk run sends "
                        "at writes of 16 KiB and more; half that at 4 KiB and less, a quarter "
                        "at 1 KiB and less (16-16384)")
    parser.add_argument("--bulk-rounds", type=int, metavar="N", help="runs of each program "
                        "per write size in the bulk scenario, interleaved (1-20)")
    parser.add_argument("--plot-only", metavar="DIR", help="only draw the plots of "
                        "DIR/results.json")
    options = parser.parse_args()
    if options.plot_only:
        return options
    settings = dict(DEFAULTS["quick" if options.quick else "full"])
    if options.connections:
        try:
            settings["connections"] = [int(n) for n in options.connections.split(",")]
        except ValueError:
            parser.error("--connections takes whole numbers, e.g. 1,10,100")
        if not all(1 <= n <= 10000 for n in settings["connections"]):
            parser.error("--connections: each from 1 to 10000")
    for name, high in (("fanout_senders", 64), ("fanout_in_flight", 4096)):
        value = getattr(options, name)
        if value:
            try:
                settings[name] = [int(n) for n in value.split(",")]
            except ValueError:
                parser.error("--%s takes whole numbers, e.g. 1,4" % name.replace("_", "-"))
            if not all(1 <= n <= high for n in settings[name]):
                parser.error("--%s: each from 1 to %d" % (name.replace("_", "-"), high))
    if options.bulk_writes:
        try:
            settings["bulk_writes"] = [parse_size(text) for text in options.bulk_writes.split(",")]
        except ValueError:
            parser.error("--bulk-writes takes sizes, e.g. 4K,128K,1M")
        if not all(1 <= size <= 1048576 for size in settings["bulk_writes"]):
            parser.error("--bulk-writes: each from 1 to 1M (lesson 15's frame limit)")
    for name, low, high in (("warmup", 0, 10), ("window", 0.5, 30), ("capacity", 10, 10000),
                            ("idle_seconds", 0.5, 30), ("fanout_receivers", 1, 2000),
                            ("bulk_mib", 16, 16384), ("bulk_rounds", 1, 20)):
        value = getattr(options, name)
        if value is not None:
            if not low <= value <= high:
                parser.error("--%s: from %s to %s" % (name.replace("_", "-"), low, high))
            settings[name] = value
    if options.scenarios:
        settings["scenarios"] = options.scenarios.split(",")
        unknown = set(settings["scenarios"]) - set(SCENARIOS)
        if unknown:
            parser.error("unknown scenario %s (choose from %s)"
                         % (", ".join(sorted(unknown)), ", ".join(SCENARIOS)))
    keys = [entry.key for entry in SERVERS + FANOUT_SERVERS + BULK_SERVERS]
    chosen = options.servers.split(",") if options.servers else keys
    unknown = set(chosen) - set(keys)
    if unknown:
        parser.error("unknown server %s (choose from %s)"
                     % (", ".join(sorted(unknown)), ", ".join(keys)))
    options.entries = [entry for entry in SERVERS if entry.key in chosen]
    options.fanout_entries = [entry for entry in FANOUT_SERVERS if entry.key in chosen]
    options.bulk_entries = [entry for entry in BULK_SERVERS if entry.key in chosen]
    options.bulk_races = {}  # write size: {key: figures or the exception}, see bulk()
    options.settings = settings
    options.build_dir = os.path.abspath(options.build_dir)
    options.out = os.path.abspath(options.out or os.path.join(options.build_dir,
                                                              "bench-results"))
    return options


def parse_size(text):
    """"128K" -> 131072, "1M" -> 1048576, "4096" -> 4096 (K, M, G: powers of 1024)."""
    text = text.strip().upper()
    shift = {"K": 10, "M": 20, "G": 30}.get(text[-1:], 0)
    return int(text[:-1] if shift else text) << shift


def size_text(size):
    """131072 -> "128 KiB", 1048576 -> "1 MiB", 1000 -> "1000 B"."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return "%d %s" % (size >> shift, unit)
    return "%d B" % size


# ---- the machine ----------------------------------------------------------------------

def first_line_matching(path, pattern):
    try:
        with open(path) as lines:
            for line in lines:
                match = re.match(pattern, line)
                if match:
                    return match.group(1).strip()
    except OSError:
        pass
    return None


def command_output(argv):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               cwd=SOURCE_DIR, timeout=10).stdout.decode().strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def describe_build(build_dir):
    """The compiler and flags of the build tree, from its CMakeCache.txt."""
    cache = os.path.join(build_dir, "CMakeCache.txt")
    compiler = first_line_matching(cache, r"CMAKE_C_COMPILER:\w+=(.*)")
    build_type = first_line_matching(cache, r"CMAKE_BUILD_TYPE:\w+=(.*)")
    flags = first_line_matching(cache, r"CMAKE_C_FLAGS_%s:\w+=(.*)" % (build_type or "").upper())
    version = command_output([compiler, "--version"]) if compiler else None
    return {"compiler": version.splitlines()[0] if version else compiler,
            "build_type": build_type, "flags": flags,
            "sanitizer": first_line_matching(cache, r"LAB_SANITIZER:\w+=(.*)")}


def describe_machine(build_dir):
    memory_kb = first_line_matching("/proc/meminfo", r"MemTotal:\s+(\d+)")
    return {
        "cores": os.cpu_count(),
        "cpu": first_line_matching("/proc/cpuinfo", r"model name\s*:\s*(.*)"),
        "memory_mb": int(memory_kb) // 1024 if memory_kb else None,
        "system": platform.system(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "libuv": command_output(["pkg-config", "--modversion", "libuv"]),
        "redis": command_output(["redis-server", "--version"]),
        "iperf3": (command_output(["iperf3", "--version"]) or "").split("\n")[0] or None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "source": command_output(["git", "describe", "--always", "--dirty"]),
        "build": describe_build(build_dir),
    }


# ---- starting servers and the load generator ---------------------------------------------

def default_from_help(path, pattern, option="--help"):
    """The default a server states in its --help (e.g. its number of workers), or None."""
    output = command_output([path, option])
    match = re.search(pattern, output or "")
    return match.group(1) if match else None


def label_of(entry, build_dir):
    if entry.default_from_help is None:
        return entry.label
    value = None
    path = entry.path(build_dir)
    if path and os.path.isfile(path):
        value = default_from_help(path, entry.default_from_help, entry.help_option)
    if value is None and isinstance(entry, (RedisEntry, IperfEntry)):
        return entry.label.replace("{} ", "")  # not installed: no version to show
    return entry.label.format(value or "default")


def start_server(entry, build_dir):
    """Starts the server on port 0, waits for "listening on", and lets it open as many
    descriptors as the hard limit allows (1,000 connections need more than 1,024)."""
    path = entry.path(build_dir)
    if not os.path.isfile(path):
        message = "no %s (build it: cmake --build --preset bench)" % path
        if entry.optional:
            raise CellSkipped(message)
        raise CellFailed(message)
    try:
        server = labtest.Server(labtest.command_for(path, ["0", "127.0.0.1"] + entry.args))
    except AssertionError as failure:
        raise CellFailed("the server did not start: %s" % failure) from None
    if resource is not None and hasattr(resource, "prlimit"):
        soft, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (hard, hard))
    return server


def check_running(server):
    if not server.running():
        raise CellFailed("the server ended during the run (status %s); stderr:\n%s"
                         % (server.process.returncode, server.stderr.text()[-2000:]))


def run_loadgen(options, server, active, idle, warmup, window, during_window=None):
    """Runs loadgen against server; during_window(loadgen) runs once its window has begun.

    Returns (loadgen's JSON result, what during_window returned)."""
    settings = options.settings
    argv = [options.loadgen, "--connections", str(active), "--idle", str(idle),
            "--warmup", str(warmup), "--duration", str(window),
            "--connect-timeout", str(settings["connect_timeout"]), server.host,
            str(server.port)]
    return run_generator(argv, server, settings["connect_timeout"] + warmup + window + 15,
                         during_window)


def run_generator(argv, server, deadline, during_window=None):
    """Runs a load generator (loadgen, fanout) until it exits; during_window(generator) runs
    once it says "NAME: measuring". Returns (its JSON result, what during_window returned)."""
    name = os.path.basename(argv[0])
    generator = labtest.Program(argv)
    measured = None
    try:
        if during_window is not None:
            try:
                generator.stderr.expect(r"^%s: measuring" % name, deadline,
                                        "%s's stderr" % name)
            except AssertionError as failure:
                raise CellFailed("%s never began its window: %s" % (name, failure)) from None
            measured = during_window(generator)
        try:
            status = generator.wait(deadline)
        except AssertionError as failure:
            raise CellFailed(str(failure)) from None
    finally:
        generator.kill()
    if status != 0 or not generator.stdout.lines:
        ended = "" if server.running() else " (the server had ended, status %s)" % (
            server.process.returncode)
        raise CellFailed("%s exited with status %s%s:\n%s"
                         % (name, status, ended, generator.stderr.text()[-2000:]))
    return json.loads(generator.stdout.lines[-1]), measured


def vm_rss_kb(pid):
    return int(first_line_matching("/proc/%d/status" % pid, r"VmRSS:\s+(\d+)") or 0)


# ---- the scenarios ------------------------------------------------------------------------
# Each returns the cell's figures (a dict); the loadgen result is kept whole under "loadgen".

def throughput(options, entry, active, idle=0):
    server = start_server(entry, options.build_dir)
    try:
        settings = options.settings
        result, _ = run_loadgen(options, server, active, idle, settings["warmup"],
                                settings["window"])
        check_running(server)
    finally:
        server.kill()
    return {"requests_per_second": result["requests_per_second"],
            "p50_us": result["p50_us"], "p99_us": result["p99_us"],
            "p999_us": result["p999_us"], "loadgen": result}


def capacity(options, entry):
    """Opens idle connections (each says one line, answered) up to the bound, holds them,
    and reads the server's memory while they are held."""
    server = start_server(entry, options.build_dir)
    try:
        pid = server.pid
        base_kb = vm_rss_kb(pid)

        def read_memory(loadgen):
            time.sleep(0.2)  # measure: the last answers leave the server's buffers
            return vm_rss_kb(pid), labtest.thread_count(pid)

        result, (held_kb, threads) = run_loadgen(
            options, server, 0, options.settings["capacity"], 0, options.settings["hold"],
            read_memory)
        check_running(server)
    finally:
        server.kill()
    held = result["open"]
    return {"held": held, "bound": options.settings["capacity"],
            "connect_seconds": result["connect_seconds"], "rss_base_kb": base_kb,
            "rss_held_kb": held_kb, "threads": threads,
            "rss_kb_per_connection": ((held_kb - base_kb) / held if held >= RSS_MIN_HELD
                                      else None),
            "loadgen": result}


def idle_cpu(options, entry):
    """CPU share of one core the server uses while IDLE_CPU_CLIENTS connections are silent."""
    server = start_server(entry, options.build_dir)
    seconds = options.settings["idle_seconds"]
    try:
        def watch_cpu(loadgen):
            return polling.idle_cpu_share(server.pid, seconds)

        result, share = run_loadgen(options, server, 0, IDLE_CPU_CLIENTS, 0, seconds + 0.3,
                                    watch_cpu)
        check_running(server)
    finally:
        server.kill()
    return {"cpu_percent": share * 100, "clients": result["open"], "loadgen": result}


def parse_strace_summary(text):
    """{syscall: calls} from the table strace -c writes (the "total" row left out)."""
    calls = {}
    row = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")
    for line in text.splitlines():
        match = row.match(line)
        if match and match.group(2) != "total":
            calls[match.group(2)] = int(match.group(1))
    return calls


def traced(options, server, name, load):
    """Runs load() while strace -c -f counts server's system calls into strace-NAME.txt.

    Returns (what load returned, {syscall: calls})."""
    strace = shutil.which("strace")
    if strace is None:
        raise CellSkipped("strace is not installed (Debian: apt-get install strace)")
    summary = os.path.join(options.out, "strace-%s.txt" % name)
    tracer = labtest.Program([strace, "-c", "-f", "-o", summary, "-p", str(server.pid)])
    try:
        try:
            tracer.stderr.expect(r"Process \d+ attached", 10, "strace's stderr")
        except AssertionError:
            raise CellSkipped("strace cannot trace here: %s"
                              % (tracer.stderr.text().strip() or "no answer")) from None
        result = load()
        tracer.process.send_signal(signal.SIGINT)  # strace detaches and writes its table
        tracer.wait(15)
    finally:
        tracer.kill()
    with open(summary) as table:
        return result, parse_strace_summary(table.read())


def per_unit(calls, units):
    """Calls per request or delivery: the total and the four most frequent."""
    units = max(units, 1)
    per = {name: count / units for name, count in calls.items()}
    top = sorted(per.items(), key=lambda item: -item[1])[:4]
    return sum(calls.values()) / units, [[name, round(value, 3)] for name, value in top]


def syscalls(options, entry):
    """System calls per request at N = 100 (lesson 03: N = 1), counted by strace -c -f."""
    active = 1 if entry.one_at_a_time else options.settings["syscall_n"]
    server = start_server(entry, options.build_dir)
    try:
        result, calls = traced(options, server, entry.key, lambda: run_loadgen(
            options, server, active, 0, options.settings["warmup"],
            options.settings["window"])[0])
        check_running(server)
    finally:
        server.kill()
    total, top = per_unit(calls, result["replies_total"])
    return {"syscalls_per_request": total, "active": active, "top": top, "calls": calls,
            "loadgen": result, "note": STRACE_NOTE}


# ---- the fan-out: lesson 12's room beside Redis pub/sub ----------------------------------

def free_port():
    """A port of 127.0.0.1 free a moment ago (redis-server cannot take port 0 and say which
    it got); start_redis tries again if another program takes it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(entry, options):
    """Starts redis-server on a free port of 127.0.0.1, nothing saved to disk, and waits
    until it accepts connections; skips the cell where it is not installed."""
    path = entry.path(options.build_dir)
    if path is None:
        raise CellSkipped("redis-server is not installed (Debian: apt-get install "
                          "redis-server): the fan-out runs without its reference")
    for _ in range(3):
        port = free_port()
        redis = labtest.Program([path, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--protected-mode", "no",
                                 "--daemonize", "no", "--logfile", "", "--dir", options.out])
        try:
            redis.stdout.expect(r"Ready to accept connections", 15, "redis-server's log")
        except AssertionError as failure:
            redis.kill()
            if "Address already in use" in redis.stdout.text():
                continue  # taken since free_port() looked: another port
            raise CellFailed("redis-server did not start: %s" % failure) from None
        redis.host, redis.port = "127.0.0.1", port
        return redis
    raise CellFailed("redis-server found no free port in 3 tries")


def start_fanout_server(entry, options):
    if isinstance(entry, RedisEntry):
        return start_redis(entry, options)
    return start_server(entry, options.build_dir)


def run_fanout(options, entry, server, receivers, senders, in_flight, warmup, window,
               during_window=None):
    """Runs tests/bench/fanout against server; returns what run_generator returns."""
    if not os.path.isfile(options.fanout):
        raise CellFailed("no %s (build it: cmake --build --preset bench)" % options.fanout)
    settings = options.settings
    argv = [options.fanout, "--target", "redis" if isinstance(entry, RedisEntry) else "room",
            "--receivers", str(receivers), "--senders", str(senders),
            "--in-flight", str(in_flight), "--warmup", str(warmup), "--duration", str(window),
            "--connect-timeout", str(settings["connect_timeout"]), server.host,
            str(server.port)]
    return run_generator(argv, server, settings["connect_timeout"] + warmup + window + 15,
                         during_window)


def fanout(options, entry, receivers, senders, in_flight):
    """Deliveries per second and delivery latency with R receivers and S senders, each
    keeping W messages on their way; and how much of a core the server and fanout used."""
    server = start_fanout_server(entry, options)
    window = options.settings["window"]
    try:
        def watch_cpu(generator):
            pids = (server.pid, generator.pid)
            before, started = [polling.fine_cpu_seconds(pid) for pid in pids], time.monotonic()
            time.sleep(max(0.2, window - 0.2))  # measure: most of the window, not past it
            after, took = [polling.fine_cpu_seconds(pid) for pid in pids], time.monotonic()
            return [(end - start) / (took - started) for start, end in zip(before, after)]

        result, (server_share, generator_share) = run_fanout(
            options, entry, server, receivers, senders, in_flight, options.settings["warmup"],
            window, watch_cpu)
        check_running(server)
    finally:
        server.kill()
    return {"receivers": receivers, "senders": senders, "in_flight": in_flight,
            "deliveries_per_second": result["deliveries_per_second"],
            "messages_per_second": result["messages_per_second"],
            "p50_us": result["p50_us"], "p99_us": result["p99_us"],
            "p999_us": result["p999_us"], "message_p99_us": result["message_p99_us"],
            "server_cpu_percent": server_share * 100,
            "generator_cpu_percent": generator_share * 100, "loadgen": result}


def fanout_syscalls(options, entry, receivers, senders, in_flight):
    """System calls per delivery of the room or Redis, counted by strace -c -f."""
    server = start_fanout_server(entry, options)
    try:
        result, calls = traced(options, server, "fanout-%s" % entry.key, lambda: run_fanout(
            options, entry, server, receivers, senders, in_flight, options.settings["warmup"],
            options.settings["window"])[0])
        check_running(server)
    finally:
        server.kill()
    total, top = per_unit(calls, result["deliveries_total"])
    return {"receivers": receivers, "senders": senders, "in_flight": in_flight,
            "syscalls_per_delivery": total, "top": top, "calls": calls,
            "loadgen": result, "note": STRACE_NOTE.replace("request", "delivery")}


# ---- bulk transfer: lesson 15 beside iperf3 ---------------------------------------------

def bulk_bytes(settings, write):
    """Bytes of one bulk run: bulk_mib MiB at writes of 16 KiB and more, less at small writes
    (slower) so that each run takes about the same time."""
    divisor = 4 if write <= 1024 else 2 if write <= 4096 else 1
    return (settings["bulk_mib"] // divisor) << 20


def start_iperf3(path, options):
    """Starts iperf3 -s -1 (one test, then it exits) on a free port of 127.0.0.1 and waits for
    its "Server listening on PORT" line (--forceflush: the line leaves at once through the
    pipe). A connection to see whether it listens would be taken for the one test."""
    for _ in range(3):
        port = free_port()
        server = labtest.Program([path, "-s", "-p", str(port), "-B", "127.0.0.1", "-1",
                                  "--forceflush"])
        try:
            server.stdout.expect(r"Server listening on %d\b" % port, 15, "iperf3 -s's stdout")
        except AssertionError as failure:
            server.kill()
            if "in use" in server.stdout.text() + server.stderr.text():
                continue  # taken since free_port() looked: another port
            raise CellFailed("iperf3 -s did not start: %s\n%s"
                             % (failure, server.stderr.text()[-1000:])) from None
        server.host, server.port = "127.0.0.1", port
        return server
    raise CellFailed("iperf3 -s found no free port in 3 tries")


def bulk_run_iperf3(options, path, write, size):
    """One iperf3 test of size bytes in writes of write bytes; returns (MB/s, figures)."""
    server = start_iperf3(path, options)
    try:
        client = labtest.Program([path, "-c", "127.0.0.1", "-p", str(server.port), "-l",
                                  str(write), "-n", str(size), "-J"])
        try:
            status = client.wait(60)
        except AssertionError as failure:
            client.kill()
            raise CellFailed(str(failure)) from None
        try:
            report = json.loads("\n".join(client.stdout.lines))
        except ValueError:
            report = {}
        if status != 0 or "error" in report or "end" not in report:
            raise CellFailed("iperf3 -c exited with status %s: %s%s" % (
                status, report.get("error", ""), client.stderr.text()[-1000:]))
        try:
            server.wait(10)  # -1: it ends after the test
        except AssertionError:
            pass  # killed below; the client's report is whole
    finally:
        server.kill()
    received = report["end"]["sum_received"]
    rate = received["bits_per_second"] / 8e6
    return rate, {"mb_per_s": rate, "received_bytes": received["bytes"],
                  "seconds": received["seconds"],
                  "sender_mb_per_s": report["end"]["sum_sent"]["bits_per_second"] / 8e6}


def bulk_run_lesson15(options, server, path, write, size):
    """One transfer of size generated bytes in frames of write bytes; returns (MB/s, figures):
    the client's MB/s, from its first send to the server's answer."""
    client = labtest.Program([path, server.host, str(server.port), "%dM" % (size >> 20),
                              str(write)])
    try:
        status = client.wait(60)
    except AssertionError as failure:
        client.kill()
        raise CellFailed(str(failure)) from None
    output = "\n".join(client.stdout.lines)
    sent = re.search(r"sent (\d+) bytes in (\d+) frames?: ([\d.]+) ms", output)
    if status != 0 or not sent or "every byte arrived" not in output:
        check_running(server)
        raise CellFailed("the client exited with status %s:\n%s\n%s" % (
            status, output[-1000:], client.stderr.text()[-1000:]))
    try:
        got = server.stdout.expect(r"received (\d+) bytes .* ([\d.]+) MB/s", 10,
                                   "the server's stdout")
    except AssertionError as failure:
        raise CellFailed(str(failure)) from None
    rate = int(sent.group(1)) / float(sent.group(3)) * 1e3 / 1e6
    return rate, {"mb_per_s": rate, "frames": int(sent.group(2)),
                  "seconds": float(sent.group(3)) / 1e3,
                  "server_mb_per_s": float(got.group(2))}


def bulk_race(options, write):
    """Lesson 15 and iperf3 at one write size, runs interleaved (15, iperf3; then iperf3, 15;
    ...): returns {key: figures, or the CellFailed/CellSkipped it met}."""
    settings = options.settings
    size = bulk_bytes(settings, write)
    runs, outcome, lesson15 = {}, {}, None
    for entry in options.bulk_entries:
        path = entry.path(options.build_dir)
        if isinstance(entry, IperfEntry) and path is None:
            outcome[entry.key] = CellSkipped(
                "iperf3 not installed (Debian: apt-get install iperf3): lesson 15 runs "
                "without its reference")
        elif not isinstance(entry, IperfEntry) and not os.path.isfile(path):
            outcome[entry.key] = CellFailed("no %s (build it: cmake --build --preset bench)"
                                            % path)
        else:
            runs[entry.key] = []
    try:
        for round_ in range(settings["bulk_rounds"]):
            order = options.bulk_entries if round_ % 2 == 0 else options.bulk_entries[::-1]
            for entry in order:
                if entry.key not in runs or entry.key in outcome:
                    continue
                path = entry.path(options.build_dir)
                try:
                    if isinstance(entry, IperfEntry):
                        runs[entry.key].append(bulk_run_iperf3(options, path, write, size))
                    else:
                        if lesson15 is None:
                            lesson15 = start_server(entry, options.build_dir)
                        client = os.path.join(os.path.dirname(path), "client")
                        runs[entry.key].append(bulk_run_lesson15(options, lesson15, client,
                                                                 write, size))
                except CellFailed as failure:
                    outcome[entry.key] = failure
    finally:
        if lesson15 is not None:
            lesson15.kill()
    for key, done in runs.items():
        if key in outcome:
            continue
        rates = [rate for rate, _ in done]
        figures = {"write_bytes": write, "bytes": size, "rounds": len(done),
                   "mb_per_s": median(rates), "runs_mb_per_s": [round(r, 1) for r in rates],
                   "runs": [details for _, details in done]}
        if key == "15":
            figures["server_mb_per_s"] = median([d["server_mb_per_s"] for _, d in done])
        outcome[key] = figures
    return outcome


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def bulk(options, entry, write):
    """The figures of entry at this write size: the first of the pair's cells runs the race
    of both (interleaved), the other takes its share of the result."""
    if write not in options.bulk_races:
        options.bulk_races[write] = bulk_race(options, write)
    result = options.bulk_races[write][entry.key]
    if isinstance(result, Exception):
        raise result
    return result


# ---- the matrix -----------------------------------------------------------------------

def plan(options):
    """Every cell of the run, in order: (scenario, entry, active, idle, extra), where a
    fan-out cell's active is its receivers and extra its senders and messages in flight."""
    settings = options.settings
    cells = []
    for scenario in settings["scenarios"]:
        if scenario == "fanout":  # the room, then Redis, for each (S, W): side by side
            for senders in settings["fanout_senders"]:
                for in_flight in settings["fanout_in_flight"]:
                    cells += [(scenario, entry, settings["fanout_receivers"], 0,
                               {"senders": senders, "in_flight": in_flight})
                              for entry in options.fanout_entries]
            continue
        if scenario == "bulk":  # lesson 15, then iperf3, for each write size: raced together
            for write in settings["bulk_writes"]:
                cells += [(scenario, entry, 0, 0, {"write_bytes": write})
                          for entry in options.bulk_entries]
            continue
        if scenario == "fanout-syscalls":
            receivers, senders, in_flight = FANOUT_SYSCALLS
            cells += [(scenario, entry, receivers, 0,
                       {"senders": senders, "in_flight": in_flight})
                      for entry in options.fanout_entries]
            continue
        for entry in options.entries:
            if scenario == "throughput":
                counts = [1] if entry.one_at_a_time else settings["connections"]
                cells += [(scenario, entry, n, 0, {}) for n in counts]
            elif scenario == "mixed":
                if not entry.one_at_a_time:
                    cells.append((scenario, entry) + settings["mixed"] + ({},))
            elif scenario == "capacity":
                cells.append((scenario, entry, 0, settings["capacity"], {}))
            elif scenario == "idle-cpu":
                cells.append((scenario, entry, 0, IDLE_CPU_CLIENTS, {}))
            else:
                n = 1 if entry.one_at_a_time else settings["syscall_n"]
                cells.append((scenario, entry, n, 0, {}))
    return cells


def measure(options, scenario, entry, active, idle, extra):
    if scenario in ("throughput", "mixed"):
        return throughput(options, entry, active, idle)
    if scenario == "capacity":
        return capacity(options, entry)
    if scenario == "idle-cpu":
        return idle_cpu(options, entry)
    if scenario == "fanout":
        return fanout(options, entry, active, extra["senders"], extra["in_flight"])
    if scenario == "fanout-syscalls":
        return fanout_syscalls(options, entry, active, extra["senders"], extra["in_flight"])
    if scenario == "bulk":
        return bulk(options, entry, extra["write_bytes"])
    return syscalls(options, entry)


def describe(cell):
    """The progress line's summary of a measured cell."""
    figures = cell["figures"]
    problems = problems_text(cell)
    problems = "  (%s)" % problems if problems else ""
    scenario = cell["scenario"]
    if scenario in ("throughput", "mixed"):
        p99 = figures["p99_us"]
        return "%10.0f req/s  p99 %s%s" % (figures["requests_per_second"],
                                          "-" if p99 is None else "%.0f us" % p99, problems)
    if scenario == "capacity":
        per = figures["rss_kb_per_connection"]
        return "held %d of %d in %.2f s, %s KB RSS each%s" % (
            figures["held"], figures["bound"], figures["connect_seconds"],
            "-" if per is None else "%.1f" % per, problems)
    if scenario == "idle-cpu":
        return "%.2f %% of a core, silent clients: %d%s" % (
            figures["cpu_percent"], figures["clients"], problems)
    if scenario == "fanout":
        p99 = figures["p99_us"]
        return "%10.0f deliveries/s  p99 %s  server %.0f %% of a core%s" % (
            figures["deliveries_per_second"], "-" if p99 is None else "%.0f us" % p99,
            figures["server_cpu_percent"], problems)
    if scenario == "bulk":
        server = figures.get("server_mb_per_s")
        return "%7.0f MB/s, median of %s (%s)%s" % (
            figures["mb_per_s"], ", ".join("%.0f" % rate for rate in figures["runs_mb_per_s"]),
            size_text(figures["bytes"]) + " each",
            "" if server is None else "; the server's own figure %.0f MB/s" % server)
    if scenario == "fanout-syscalls":
        return "%.2f system calls per delivery (%s)" % (
            figures["syscalls_per_delivery"],
            ", ".join("%s %.3f" % (name, value) for name, value in figures["top"]))
    return "%.1f system calls per request (%s)" % (
        figures["syscalls_per_request"],
        ", ".join("%s %.2f" % (name, value) for name, value in figures["top"]))


def cell_name(scenario, entry, active, idle, label, extra):
    if scenario == "throughput":
        what = "N=%d" % active
    elif scenario == "mixed":
        what = "%d+%d idle" % (active, idle)
    elif scenario == "syscalls":
        what = "N=%d" % active
    elif scenario.startswith("fanout"):
        what = "R=%d S=%d W=%d" % (active, extra["senders"], extra["in_flight"])
    elif scenario == "bulk":
        what = "W=%s" % size_text(extra["write_bytes"])
    else:
        what = "%d idle" % idle
    return "%-10s %-32s %-12s" % (scenario, label, what)


def run_matrix(options):
    cells = []
    planned = plan(options)
    labels = {entry.key: label_of(entry, options.build_dir)
              for entry in options.entries + options.fanout_entries
              + options.bulk_entries}
    for number, (scenario, entry, active, idle, extra) in enumerate(planned, 1):
        cell = {"scenario": scenario, "server": entry.key, "label": labels[entry.key],
                "active": active, "idle": idle, "note": entry.note}
        cell.update(extra)
        prefix = "[%2d/%d] %s" % (number, len(planned), cell_name(
            scenario, entry, active, idle, labels[entry.key], extra))
        started = time.monotonic()
        try:
            cell["figures"] = measure(options, scenario, entry, active, idle, extra)
            cell["status"] = "ok"
            summary = describe(cell)
        except CellSkipped as reason:
            cell["status"], cell["reason"] = "skipped", str(reason)
            summary = "skipped: %s" % reason
        except CellFailed as reason:
            cell["status"], cell["reason"] = "failed", str(reason)
            summary = "FAILED: %s" % reason
        cell["seconds"] = round(time.monotonic() - started, 2)
        if scenario == "fanout" and entry.key == FANOUT_REFERENCE:
            summary += fanout_ratio_text(cells, cell)
        if scenario == "bulk" and entry.key == BULK_REFERENCE:
            summary += bulk_ratio_text(cells, cell)
        print("%s %s" % (prefix, summary), flush=True)
        cells.append(cell)
    return cells


# ---- writing the results ------------------------------------------------------------------

def number(value, digits=0, unit=""):
    if value is None:
        return "-"
    return ("{:,.%df}" % digits).format(value) + unit


def ratio(value, reference):
    """" (0.85×)": value divided by the reference's, with the digits that matter."""
    if value is None or not reference:
        return ""
    share = value / reference
    digits = 0 if share >= 10 else 2 if share >= 0.1 else 3
    return " (%.*f×)" % (digits, share)


def cells_of(cells, scenario):
    return [cell for cell in cells if cell["scenario"] == scenario]


def figure(cell, name):
    if cell is None or cell["status"] != "ok":
        return None
    return cell["figures"].get(name)


def problems_text(cell):
    result = cell.get("figures", {}).get("loadgen", {})
    parts = []
    if result.get("starved"):
        parts.append("%d starved" % result["starved"])
    if result.get("unanswered"):
        parts.append("%d unanswered" % result["unanswered"])
    if result.get("not_started"):
        parts.append("%d not tried" % result["not_started"])
    if result.get("errors"):
        parts.append("%d errors" % result["errors"])
    if result.get("dropped"):
        parts.append("%d dropped" % result["dropped"])
    return ", ".join(parts)


def status_text(cell):
    if cell["status"] == "ok":
        return problems_text(cell)
    return "%s: %s" % (cell["status"], cell["reason"].splitlines()[0])


def markdown_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def server_rows(cells):
    """The servers of these cells in matrix order, each with its label."""
    seen = []
    for cell in cells:
        if (cell["server"], cell["label"]) not in seen:
            seen.append((cell["server"], cell["label"]))
    return seen


def throughput_tables(cells):
    cells = cells_of(cells, "throughput")
    if not cells:
        return []
    counts = sorted({cell["active"] for cell in cells})
    find = {(cell["server"], cell["active"]): cell for cell in cells}
    lines = []
    for name, title, digits, unit in (
            ("requests_per_second", "requests per second (higher is better)", 0, ""),
            ("p50_us", "median latency p50, µs (lower is better)", 0, ""),
            ("p99_us", "latency p99, µs (lower is better)", 0, ""),
            ("p999_us", "latency p99.9, µs (lower is better)", 0, "")):
        rows = []
        for key, label in server_rows(cells):
            row = [label]
            for n in counts:
                cell = find.get((key, n))
                if cell is None:
                    row.append("")
                    continue
                value = figure(cell, name)
                text = number(value, digits, unit) + ratio(
                    value, figure(find.get((REFERENCE, n)), name))
                trouble = status_text(cell) if cell["status"] != "ok" else problems_text(cell)
                row.append(text + (" ‹%s›" % trouble if trouble else ""))
            rows.append(row)
        lines += ["", "#### Throughput: %s" % title, ""]
        lines += markdown_table(["server"] + ["N = %d" % n for n in counts], rows)
    return lines


def mixed_table(cells):
    cells = cells_of(cells, "mixed")
    if not cells:
        return []
    reference = next((cell for cell in cells if cell["server"] == REFERENCE), None)
    rows = []
    for cell in cells:
        rps, p99 = figure(cell, "requests_per_second"), figure(cell, "p99_us")
        rows.append([cell["label"],
                     number(rps) + ratio(rps, figure(reference, "requests_per_second")),
                     number(figure(cell, "p50_us")),
                     number(p99) + ratio(p99, figure(reference, "p99_us")),
                     number(figure(cell, "p999_us")), status_text(cell)])
    first = cells[0]
    return ["", "#### Mixed: %d active + %d idle connections" % (first["active"], first["idle"]),
            ""] + markdown_table(["server", "requests/s", "p50 µs", "p99 µs", "p99.9 µs",
                                  "problems"], rows)


def capacity_table(cells):
    cells = cells_of(cells, "capacity")
    if not cells:
        return []
    reference = next((cell for cell in cells if cell["server"] == REFERENCE), None)
    rows = []
    for cell in cells:
        held, per = figure(cell, "held"), figure(cell, "rss_kb_per_connection")
        rows.append([cell["label"],
                     number(held) + ratio(held, figure(reference, "held")),
                     number(figure(cell, "connect_seconds"), 2),
                     number(per, 2) + ratio(per, figure(reference, "rss_kb_per_connection")),
                     number(figure(cell, "threads")), status_text(cell)])
    bound = cells[0]["idle"]
    return ["", "#### Capacity: idle connections held (bound %s), time to open them, memory"
            % number(bound), ""] + markdown_table(
        ["server", "held", "seconds to open", "RSS KB per connection", "threads", "problems"],
        rows)


def idle_cpu_table(cells):
    cells = cells_of(cells, "idle-cpu")
    if not cells:
        return []
    rows = [[cell["label"], number(figure(cell, "cpu_percent"), 2, " %"),
             status_text(cell)] for cell in cells]
    return ["", "#### Idle CPU: share of one core with %d silent clients" % IDLE_CPU_CLIENTS,
            ""] + markdown_table(["server", "CPU", "problems"], rows)


def syscalls_table(cells):
    cells = cells_of(cells, "syscalls")
    if not cells:
        return []
    reference = next((cell for cell in cells if cell["server"] == REFERENCE), None)
    rows = []
    for cell in cells:
        value = figure(cell, "syscalls_per_request")
        top = figure(cell, "top") or []
        rows.append([cell["label"], str(cell["active"]),
                     number(value, 1) + ratio(value, figure(reference, "syscalls_per_request")),
                     ", ".join("%s %.2f" % (name, count) for name, count in top),
                     status_text(cell)])
    return ["", "#### System calls per request (strace -c -f)", "",
            "(%s.)" % STRACE_NOTE, ""] + markdown_table(
        ["server", "N", "calls per request", "most frequent, per request", "problems"], rows)


def same_load(cell, other):
    return all(cell.get(name) == other.get(name) for name in ("active", "senders", "in_flight"))


def fanout_reference_of(cells, cell):
    """The Redis cell of the same scenario measured with the same R, S and W, or None."""
    return next((other for other in cells_of(cells, cell["scenario"])
                 if other["server"] == FANOUT_REFERENCE and same_load(cell, other)), None)


def fanout_ratio_text(cells, reference):
    """"  [lesson 12 / Redis: 0.72× deliveries/s, 1.60× p99]" once both are measured."""
    room = next((cell for cell in cells_of(cells, "fanout")
                 if cell["server"] != FANOUT_REFERENCE and same_load(cell, reference)), None)
    rate, base = figure(room, "deliveries_per_second"), figure(reference, "deliveries_per_second")
    if rate is None or not base:
        return ""
    p99, base_p99 = figure(room, "p99_us"), figure(reference, "p99_us")
    return "  [lesson 12 / Redis: %.2f× deliveries/s, %s p99]" % (
        rate / base, "%.2f×" % (p99 / base_p99) if p99 and base_p99 else "-")


def fanout_table(cells):
    cells = cells_of(cells, "fanout")
    if not cells:
        return []
    rows = []
    for cell in cells:
        reference = fanout_reference_of(cells, cell)
        rate, p99 = figure(cell, "deliveries_per_second"), figure(cell, "p99_us")
        rows.append([cell["label"], str(cell["senders"]), str(cell["in_flight"]),
                     number(rate) + ratio(rate, figure(reference, "deliveries_per_second")),
                     number(figure(cell, "messages_per_second")),
                     number(figure(cell, "p50_us")),
                     number(p99) + ratio(p99, figure(reference, "p99_us")),
                     number(figure(cell, "server_cpu_percent"), 0, " %"),
                     number(figure(cell, "generator_cpu_percent"), 0, " %"),
                     status_text(cell)])
    return ["", "#### Fan-out: %d receivers, lesson 12 beside Redis pub/sub" % cells[0]["active"],
            "", "(S senders each keep W messages on their way until every receiver has them. "
            "A delivery is one message read by one receiver; its latency runs from the send "
            "to that read. In brackets: the figure divided by Redis's in the same run. CPU: "
            "share of one core, of the server and of tests/bench/fanout, during the "
            "window.)", ""] + markdown_table(
        ["server", "S", "W", "deliveries/s", "messages/s", "p50 µs", "p99 µs", "server CPU",
         "fanout CPU", "problems"], rows)


def fanout_syscalls_table(cells):
    cells = cells_of(cells, "fanout-syscalls")
    if not cells:
        return []
    rows = []
    for cell in cells:
        value = figure(cell, "syscalls_per_delivery")
        top = figure(cell, "top") or []
        rows.append([cell["label"], "R=%d S=%d W=%d" % (cell["active"], cell["senders"],
                                                         cell["in_flight"]),
                     number(value, 3) + ratio(value, figure(fanout_reference_of(cells, cell),
                                                            "syscalls_per_delivery")),
                     ", ".join("%s %.3f" % (name, count) for name, count in top),
                     status_text(cell)])
    return ["", "#### Fan-out: system calls per delivery (strace -c -f)", "",
            "(%s.)" % STRACE_NOTE.replace("request", "delivery"), ""] + markdown_table(
        ["server", "load", "calls per delivery", "most frequent, per delivery", "problems"],
        rows)


def bulk_pair(cells, write):
    """(lesson 15's cell, iperf3's cell) at this write size; either may be None."""
    find = {cell["server"]: cell for cell in cells_of(cells, "bulk")
            if cell["write_bytes"] == write}
    return find.get("15"), find.get(BULK_REFERENCE)


def bulk_ratio_text(cells, reference):
    """"  [lesson 15 / iperf3: 1.05×]" once both are measured at this write size."""
    lesson15, _ = bulk_pair(cells, reference["write_bytes"])
    rate, base = figure(lesson15, "mb_per_s"), figure(reference, "mb_per_s")
    if rate is None or not base:
        return ""
    target = ""
    if reference["write_bytes"] == BULK_HEADLINE:
        target = ", target >= %.2f×: %s" % (BULK_TARGET, "met" if rate / base >= BULK_TARGET
                                            else "MISSED")
    return "  [lesson 15 / iperf3: %.2f×%s]" % (rate / base, target)


def bulk_table(cells):
    cells = cells_of(cells, "bulk")
    if not cells:
        return []
    writes = []
    for cell in cells:
        if cell["write_bytes"] not in writes:
            writes.append(cell["write_bytes"])
    rows = []
    for write in writes:
        lesson15, reference = bulk_pair(cells, write)
        rate, base = figure(lesson15, "mb_per_s"), figure(reference, "mb_per_s")
        size = figure(lesson15, "bytes") or figure(reference, "bytes")
        rows.append([("**%s**" if write == BULK_HEADLINE else "%s") % size_text(write),
                     size_text(size) if size else "-",
                     number(rate), number(base),
                     "%.2f×" % (rate / base) if rate is not None and base else "-",
                     ", ".join("%.0f" % r for r in figure(lesson15, "runs_mb_per_s") or []),
                     ", ".join("%.0f" % r for r in figure(reference, "runs_mb_per_s") or []),
                     number(figure(lesson15, "server_mb_per_s")),
                     "; ".join(status_text(cell) for cell in (lesson15, reference)
                               if cell is not None and cell["status"] != "ok")])
    rounds = max((figure(cell, "rounds") or 0) for cell in cells)
    return ["", "#### Bulk transfer: lesson 15 beside iperf3, MB/s by write size (higher is "
            "better)", "", "(One connection on 127.0.0.1 sends the bytes of a run in writes "
            "of W bytes: lesson 15's client with FRAME-SIZE W, iperf3 -l W. Median of %d "
            "run%s each, interleaved; MB = 10^6 bytes. Lesson 15: bytes over the time from "
            "its client's first send to the server's answer; iperf3: the receiver's "
            "bits_per_second / 8. The server's own figure: lesson 15's server, first frame "
            "to end frame. Target at 128 KiB: lesson 15 >= %.2f× iperf3.)"
            % (rounds, "" if rounds == 1 else "s", BULK_TARGET), ""] + markdown_table(
        ["write W", "bytes per run", "lesson 15 MB/s", "iperf3 MB/s", "lesson 15 / iperf3",
         "lesson 15 runs", "iperf3 runs", "lesson 15 server's own MB/s", "problems"], rows)


def write_markdown(results, path):
    machine = results["machine"]
    build = machine.get("build") or {}
    lines = ["### Results of %s" % results["date"], "",
             "- Machine: %s cores (%s), %s MB, %s %s; load average at start %s." % (
                 machine["cores"], machine["cpu"], machine["memory_mb"], machine["system"],
                 machine["kernel"], ", ".join("%.2f" % load for load in
                                              machine["load_average"] or [])),
             "- Build: %s, %s %s." % (build.get("compiler"), build.get("build_type"),
                                     build.get("flags")),
             "- Command: `%s`%s." % (results["command"],
                                    " (quick)" if results["quick"] else ""),
             "- Each cell: %s s warm-up, %s s measured; lines of 64 bytes. In brackets: the "
             "figure divided by lesson 11 level-triggered's in the same run (in the fan-out: "
             "Redis's). ‹...›: "
             "connections that got no answer (starved, unanswered), were not tried in time, "
             "or failed (errors), or that the server closed mid-run (dropped)." % (
                 results["settings"]["warmup"], results["settings"]["window"])]
    cells = results["cells"]
    for table in (throughput_tables, mixed_table, capacity_table, idle_cpu_table,
                  syscalls_table, fanout_table, fanout_syscalls_table, bulk_table):
        lines += table(cells)
    notes = {cell["label"]: cell["note"] for cell in cells if cell["note"]}
    if notes:
        lines += ["", "Notes:"] + ["- %s: %s" % note for note in notes.items()]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


CSV_COLUMNS = ["scenario", "server", "label", "active", "idle", "status",
               "requests_per_second", "p50_us", "p99_us", "p999_us", "held",
               "connect_seconds", "rss_kb_per_connection", "threads", "cpu_percent",
               "syscalls_per_request", "replies", "errors", "starved", "unanswered",
               "receivers", "senders", "in_flight", "deliveries_per_second",
               "messages_per_second", "message_p99_us", "server_cpu_percent",
               "generator_cpu_percent", "syscalls_per_delivery", "dropped", "write_bytes",
               "bytes", "rounds", "mb_per_s", "server_mb_per_s", "reason"]


def write_csv(cells, path):
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for cell in cells:
            row = dict(cell)
            row.update(cell.get("figures", {}))
            for name in ("replies", "errors", "starved", "unanswered", "dropped"):
                row[name] = cell.get("figures", {}).get("loadgen", {}).get(name)
            writer.writerow(row)


# ---- the plots --------------------------------------------------------------------------

def draw_plots(results, out_dir):
    """Draws the PNG plots with matplotlib; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    cells = results["cells"]
    written = []
    throughput_cells = [cell for cell in cells_of(cells, "throughput") if cell["status"] == "ok"]
    for name, ylabel, filename, log_y in (
            ("requests_per_second", "requests per second", "requests_per_second.png", False),
            ("p99_us", "p99 latency (µs)", "p99_latency.png", True)):
        if throughput_cells:
            written.append(draw_throughput_plot(plt, throughput_cells, name, ylabel,
                                                os.path.join(out_dir, filename), log_y,
                                                results["date"]))
    capacity_cells = [cell for cell in cells_of(cells, "capacity")
                      if cell["status"] == "ok"
                      and cell["figures"]["rss_kb_per_connection"] is not None]
    if capacity_cells:
        figure_, axes = plt.subplots(figsize=(8, 5))
        labels = ["%s (%d held)" % (cell["label"], cell["figures"]["held"])
                  for cell in capacity_cells]
        values = [cell["figures"]["rss_kb_per_connection"] for cell in capacity_cells]
        axes.barh(labels, values)
        axes.invert_yaxis()
        axes.set_xlabel("RSS per held connection (KB)")
        axes.set_title("memory per idle connection - run of %s" % run_time(results["date"]))
        axes.grid(True, axis="x", alpha=0.3)
        left_out = [cell["label"] for cell in cells_of(cells, "capacity")
                    if cell not in capacity_cells]
        if left_out:
            figure_.text(0.01, 0.01, "left out (fewer than %d held, or failed): %s"
                         % (RSS_MIN_HELD, "; ".join(left_out)), fontsize="small")
        figure_.tight_layout(rect=(0, 0.04 if left_out else 0, 1, 1))
        path = os.path.join(out_dir, "rss_per_connection.png")
        figure_.savefig(path, dpi=100)
        plt.close(figure_)
        written.append(path)
    fanout_cells = [cell for cell in cells_of(cells, "fanout") if cell["status"] == "ok"]
    if fanout_cells:
        written.append(draw_fanout_plot(plt, fanout_cells, results["date"], out_dir))
    bulk_cells = [cell for cell in cells_of(cells, "bulk") if cell["status"] == "ok"]
    if bulk_cells:
        written.append(draw_bulk_plot(plt, bulk_cells, results["date"], out_dir))
    return written


def run_time(date):
    """"2026-12-03T15:34:08+00:00" -> "2026-12-03 15:34 UTC" (the plots' titles)."""
    return date[:10] + " " + date[11:16] + (" UTC" if date.endswith("+00:00") else "")


def draw_throughput_plot(plt, cells, name, ylabel, path, log_y, date):
    """One line per server through its cells where every connection was served; a cell with
    starved, unanswered, refused or failed connections (problems_text) is not on the line: it
    is a large X of the server's colour, numbered, and listed beside the plot with what went
    wrong - its figure counts only the connections that were served. The legend stands
    outside the axes, so it hides no point."""
    figure_, axes = plt.subplots(figsize=(12, 5.6))
    troubled = []
    for key, label in server_rows(cells):
        mine = sorted((cell for cell in cells if cell["server"] == key
                       and cell["figures"][name] is not None), key=lambda cell: cell["active"])
        clean = [(cell["active"], cell["figures"][name]) for cell in mine
                 if not problems_text(cell)]
        bad = [cell for cell in mine if problems_text(cell)]
        style = dict(label=label, linewidth=2.5 if key == REFERENCE else 1.2)
        if clean:
            line, = axes.plot(*zip(*clean), marker="o", **style)
        else:
            line, = axes.plot([], [], marker="o", **style)
        for cell in bad:
            troubled.append(cell)
            x, y = cell["active"], cell["figures"][name]
            axes.plot([x], [y], linestyle="none", marker="X", markersize=13,
                      color=line.get_color(), markeredgecolor="black", zorder=3)
            axes.annotate(str(len(troubled)), (x, y), xytext=(7, 5),
                          textcoords="offset points", fontsize="small", fontweight="bold")
    axes.set_xscale("log")
    counts = sorted({cell["active"] for cell in cells})
    axes.set_xticks(counts)
    axes.set_xticklabels([str(n) for n in counts])
    axes.minorticks_off()
    if log_y:
        axes.set_yscale("log")
    else:
        axes.set_ylim(bottom=0)
    axes.set_xlabel("active connections N (one request outstanding on each)")
    axes.set_ylabel(ylabel)
    axes.set_title("%s - run of %s" % (ylabel, run_time(date)))
    axes.grid(True, which="both", alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    if troubled:
        handles.append(plt.Line2D([], [], linestyle="none", marker="X", markersize=11,
                                  color="white", markeredgecolor="black"))
        labels.append("not every connection served:\nnot comparable (list below)")
    axes.legend(handles, labels, fontsize="small", loc="upper left",
                bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if troubled:
        text = "\n".join("%d  %s, N = %d: %s" % (number_, cell["label"], cell["active"],
                                                  problems_text(cell))
                          for number_, cell in enumerate(troubled, 1))
        axes.text(1.01, 0.0, "X, numbered:\n" + text, transform=axes.transAxes,
                  fontsize="x-small", va="bottom", ha="left")
    figure_.tight_layout()
    figure_.savefig(path, dpi=100)
    plt.close(figure_)
    return path


def draw_bulk_plot(plt, cells, date, out_dir):
    """MB/s against the write size (log x), one line per program through the medians, each
    run a faint dot; lesson 15 / iperf3 written above each write size."""
    figure_, axes = plt.subplots(figsize=(10, 5))
    medians = {}
    for key, label in server_rows(cells):
        mine = sorted((cell for cell in cells if cell["server"] == key),
                      key=lambda cell: cell["write_bytes"])
        points = [(cell["write_bytes"], cell["figures"]["mb_per_s"]) for cell in mine]
        medians[key] = dict(points)
        line, = axes.plot(*zip(*points), marker="o", label=label,
                          linewidth=1.2 if key == BULK_REFERENCE else 2.5)
        runs = [(cell["write_bytes"], rate) for cell in mine
                for rate in cell["figures"]["runs_mb_per_s"]]
        axes.scatter(*zip(*runs), s=12, alpha=0.35, color=line.get_color())
    writes = sorted({cell["write_bytes"] for cell in cells})
    top = max(rate for cell in cells for rate in cell["figures"]["runs_mb_per_s"])
    for write in writes:
        rate, base = medians.get("15", {}).get(write), medians.get(BULK_REFERENCE, {}).get(write)
        if rate and base:
            axes.annotate("%.2f×" % (rate / base), (write, top * 1.04), ha="center",
                          fontsize="small", fontweight="bold" if write == BULK_HEADLINE
                          else "normal")
    axes.set_xscale("log", base=2)
    axes.set_xticks(writes)
    axes.set_xticklabels([size_text(write).replace(" ", "\n") for write in writes])
    axes.minorticks_off()
    axes.set_ylim(0, top * 1.12)
    axes.set_xlabel("write size W (bytes per send(); above each: lesson 15 / iperf3)")
    axes.set_ylabel("MB/s (10^6 bytes per second)")
    axes.set_title("bulk transfer on 127.0.0.1, one connection - %s" % date[:10])
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                borderaxespad=0)  # outside the axes: it hides no point
    figure_.tight_layout()
    path = os.path.join(out_dir, "bulk.png")
    figure_.savefig(path, dpi=100)
    plt.close(figure_)
    return path


def draw_fanout_plot(plt, cells, date, out_dir):
    """Bars side by side for each (S, W): deliveries per second, and p99 latency."""
    loads = []
    for cell in cells:
        if (cell["senders"], cell["in_flight"]) not in loads:
            loads.append((cell["senders"], cell["in_flight"]))
    servers = server_rows(cells)
    width = 0.8 / len(servers)
    figure_, panes = plt.subplots(1, 2, figsize=(10, 4.5))
    for pane, name, ylabel in ((panes[0], "deliveries_per_second", "deliveries per second"),
                               (panes[1], "p99_us", "p99 delivery latency (µs)")):
        for index, (key, label) in enumerate(servers):
            find = {(cell["senders"], cell["in_flight"]): cell["figures"][name]
                    for cell in cells if cell["server"] == key}
            pane.bar([position + index * width for position in range(len(loads))],
                     [find.get(load) or 0 for load in loads], width, label=label)
        pane.set_xticks([position + width * (len(servers) - 1) / 2
                         for position in range(len(loads))])
        pane.set_xticklabels(["S=%d, W=%d" % load for load in loads])
        pane.set_xlabel("senders S, messages in flight per sender W")
        pane.set_ylabel(ylabel)
        pane.grid(True, axis="y", alpha=0.3)
    handles, labels = panes[0].get_legend_handles_labels()
    figure_.legend(handles, labels, loc="upper center", ncol=len(servers), fontsize="small",
                   bbox_to_anchor=(0.5, 0.93))
    figure_.suptitle("fan-out to %d receivers - %s" % (cells[0]["active"], date[:10]))
    figure_.tight_layout(rect=(0, 0, 1, 0.86))
    path = os.path.join(out_dir, "fanout.png")
    figure_.savefig(path, dpi=100)
    plt.close(figure_)
    return path


def load_results(out_dir):
    with open(os.path.join(out_dir, "results.json")) as source:
        return json.load(source)


def plot(out_dir):
    """Draws the plots of out_dir/results.json here if matplotlib is importable, else with
    /usr/bin/python3 (where Debian's python3-matplotlib installs); True if drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        system_python = "/usr/bin/python3"
        if os.path.exists(system_python) and (os.path.realpath(system_python)
                                              != os.path.realpath(sys.executable)):
            return subprocess.run([system_python, os.path.abspath(__file__), "--plot-only",
                                   out_dir], timeout=120).returncode == 0
        print("plots skipped: matplotlib is not installed for %s or /usr/bin/python3 "
              "(Debian: apt-get install python3-matplotlib)" % sys.executable)
        return False
    for path in draw_plots(load_results(out_dir), out_dir):
        print("plot: %s" % path)
    return True


# ---- main -----------------------------------------------------------------------------

def main():
    options = parse_arguments()
    if options.plot_only:
        return 0 if plot(os.path.abspath(options.plot_only)) else 1
    if not sys.platform.startswith("linux"):
        print("run.py: the benchmark reads /proc and runs loadgen (epoll): Linux only")
        return 1
    options.loadgen = os.path.join(options.build_dir, "tests", "bench", "loadgen")
    options.fanout = os.path.join(options.build_dir, "tests", "bench", "fanout")
    if not os.path.isfile(options.loadgen):
        print("run.py: no %s: build it first:\n  cmake --preset bench && cmake --build "
              "--preset bench" % options.loadgen, file=sys.stderr)
        return 1
    os.makedirs(options.out, exist_ok=True)
    started = time.monotonic()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python3", os.path.relpath(__file__, SOURCE_DIR)] + sys.argv[1:]),
        "quick": options.quick, "machine": describe_machine(options.build_dir),
        "settings": dict(options.settings, reference=REFERENCE, line_bytes=64,
                         idle_cpu_clients=IDLE_CPU_CLIENTS, fanout_reference=FANOUT_REFERENCE,
                         fanout_message_bytes=64, fanout_queue_limit=FANOUT_QUEUE_LIMIT,
                         bulk_reference=BULK_REFERENCE, bulk_target=BULK_TARGET,
                         bulk_headline_write=BULK_HEADLINE),
    }
    machine = results["machine"]
    print("run.py: %d cells; %s cores, %s %s; results in %s" % (
        len(plan(options)), machine["cores"], machine["system"], machine["kernel"],
        options.out), flush=True)
    results["cells"] = run_matrix(options)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = (list(os.getloadavg())
                                                 if hasattr(os, "getloadavg") else None)
    with open(os.path.join(options.out, "results.json"), "w") as out:
        json.dump(results, out, indent=1)
    write_csv(results["cells"], os.path.join(options.out, "results.csv"))
    write_markdown(results, os.path.join(options.out, "results.md"))
    plot(options.out)
    failed = [cell for cell in results["cells"] if cell["status"] == "failed"]
    skipped = [cell for cell in results["cells"] if cell["status"] == "skipped"]
    print("run.py: %d cells in %.0f s: %d failed, %d skipped; wrote results.json, "
          "results.csv, results.md in %s" % (len(results["cells"]), results["seconds"],
                                              len(failed), len(skipped), options.out))
    for cell in failed:
        print("  FAILED %s %s: %s" % (cell["scenario"], cell["label"],
                                      cell["reason"].splitlines()[0]))
    for cell in cells_of(results["cells"], "fanout"):
        if cell["server"] == FANOUT_REFERENCE:
            text = fanout_ratio_text(results["cells"], cell)
            if text:
                print("  fanout R=%d S=%d W=%d:%s" % (cell["active"], cell["senders"],
                                                     cell["in_flight"], text.strip(" []")
                                                     .replace("lesson 12 / Redis:", "")))
    for cell in cells_of(results["cells"], "bulk"):
        if cell["server"] == BULK_REFERENCE:
            text = bulk_ratio_text(results["cells"], cell)
            if text:
                lesson15, _ = bulk_pair(results["cells"], cell["write_bytes"])
                print("  bulk W=%s: %s (%.0f against %.0f MB/s)" % (
                    size_text(cell["write_bytes"]), text.strip(" []"),
                    lesson15["figures"]["mb_per_s"], cell["figures"]["mb_per_s"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
