#!/usr/bin/env python3
"""run.py - races every echo server of the lab side by side, with a libuv server as the
outside reference, and writes the results as JSON, CSV, Markdown tables and plots.

usage: python3 tests/bench/run.py [--build-dir build-bench] [--quick] [--out DIR]
                                  [--servers KEY,...] [--scenarios NAME,...]
                                  [--connections N,...] [--warmup S] [--window S]
                                  [--capacity N] [--idle-seconds S]
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
Servers: 03, 05 (POLL-MS default and 0), 06, 07, 08, 10, 11 level, 11 edge, libuv (keys
below). Ratios compare each server with lesson 11 level-triggered in the same run.

--quick runs N = 1 and 10, short windows, a capacity bound of 100 and no strace: it proves
the benchmark still works (CI runs it) in well under two minutes, and exits non-zero if any
server failed to run. All traffic stays on loopback; every part of a run is bounded.
Standard library only; the plots need matplotlib (Debian: python3-matplotlib), which it looks
for in this interpreter, then in /usr/bin/python3; without it the plots are skipped.
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
                 optional=False, default_from_help=None):
        self.key = key
        self.label = label
        self.lesson = lesson          # lessons/<lesson>/server, or None for the reference
        self.args = list(args)        # after "0 127.0.0.1"
        self.note = note
        self.one_at_a_time = one_at_a_time
        self.optional = optional      # a missing binary is skipped, not a failure
        self.default_from_help = default_from_help  # regex: the default shown in the label

    def path(self, build_dir):
        if self.lesson is None:
            return os.path.join(build_dir, "tests", "bench", "uv_echo_server")
        return os.path.join(build_dir, "lessons", self.lesson, "server")


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
    Entry("uv", "libuv (reference)", None, optional=True,
          note="tests/bench/uv_echo_server.c: libuv's loop, not the lab's"),
]
REFERENCE = "11-level"
SCENARIOS = ["throughput", "mixed", "capacity", "idle-cpu", "syscalls"]
DEFAULTS = {  # full run, then --quick
    "full": dict(connections=[1, 10, 100, 1000], warmup=2.0, window=5.0, mixed=(10, 990),
                 capacity=10000, hold=1.0, idle_seconds=3.0, syscall_n=100,
                 connect_timeout=10.0, scenarios=SCENARIOS),
    "quick": dict(connections=[1, 10], warmup=0.5, window=1.0, mixed=(10, 90),
                  capacity=100, hold=0.4, idle_seconds=0.5, syscall_n=100,
                  connect_timeout=1.0, scenarios=["throughput", "mixed", "capacity", "idle-cpu"]),
}
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
        description="Race every echo server of the lab with tests/bench/loadgen.",
        epilog="servers: " + ", ".join(entry.key for entry in SERVERS)
               + "; scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--build-dir", default=os.path.join(SOURCE_DIR, "build-bench"),
                        help="build tree of the bench preset (default build-bench/)")
    parser.add_argument("--out", help="where the results go (default BUILD-DIR/bench-results)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run that proves the benchmark works (CI)")
    parser.add_argument("--servers", help="comma-separated keys (default: all)")
    parser.add_argument("--scenarios", help="comma-separated names (default: all; --quick "
                        "leaves out syscalls)")
    parser.add_argument("--connections", help="active connections for throughput, e.g. "
                        "1,10,100 (each 1-10000)")
    parser.add_argument("--warmup", type=float, help="seconds before each window (0-10)")
    parser.add_argument("--window", type=float, help="seconds measured per cell (0.5-30)")
    parser.add_argument("--capacity", type=int, help="most connections the capacity "
                        "scenario opens (10-10000)")
    parser.add_argument("--idle-seconds", type=float, help="seconds of CPU watched in "
                        "idle-cpu (0.5-30)")
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
    for name, low, high in (("warmup", 0, 10), ("window", 0.5, 30), ("capacity", 10, 10000),
                            ("idle_seconds", 0.5, 30)):
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
    keys = [entry.key for entry in SERVERS]
    chosen = options.servers.split(",") if options.servers else keys
    unknown = set(chosen) - set(keys)
    if unknown:
        parser.error("unknown server %s (choose from %s)"
                     % (", ".join(sorted(unknown)), ", ".join(keys)))
    options.entries = [entry for entry in SERVERS if entry.key in chosen]
    options.settings = settings
    options.build_dir = os.path.abspath(options.build_dir)
    options.out = os.path.abspath(options.out or os.path.join(options.build_dir,
                                                              "bench-results"))
    return options


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
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "source": command_output(["git", "describe", "--always", "--dirty"]),
        "build": describe_build(build_dir),
    }


# ---- starting servers and the load generator ---------------------------------------------

def default_from_help(path, pattern):
    """The default a server states in its --help (e.g. its number of workers), or None."""
    output = command_output([path, "--help"])
    match = re.search(pattern, output or "")
    return match.group(1) if match else None


def label_of(entry, build_dir):
    if entry.default_from_help is None:
        return entry.label
    value = None
    if os.path.isfile(entry.path(build_dir)):
        value = default_from_help(entry.path(build_dir), entry.default_from_help)
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
    loadgen = labtest.Program(argv)
    deadline = settings["connect_timeout"] + warmup + window + 15
    measured = None
    try:
        if during_window is not None:
            try:
                loadgen.stderr.expect(r"^loadgen: measuring", deadline, "loadgen's stderr")
            except AssertionError as failure:
                raise CellFailed("loadgen never began its window: %s" % failure) from None
            measured = during_window(loadgen)
        try:
            status = loadgen.wait(deadline)
        except AssertionError as failure:
            raise CellFailed(str(failure)) from None
    finally:
        loadgen.kill()
    if status != 0 or not loadgen.stdout.lines:
        ended = "" if server.running() else " (the server had ended, status %s)" % (
            server.process.returncode)
        raise CellFailed("loadgen exited with status %s%s:\n%s"
                         % (status, ended, loadgen.stderr.text()[-2000:]))
    return json.loads(loadgen.stdout.lines[-1]), measured


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


def syscalls(options, entry):
    """System calls per request at N = 100 (lesson 03: N = 1), counted by strace -c -f."""
    strace = shutil.which("strace")
    if strace is None:
        raise CellSkipped("strace is not installed (Debian: apt-get install strace)")
    server = start_server(entry, options.build_dir)
    summary = os.path.join(options.out, "strace-%s.txt" % entry.key)
    tracer = None
    try:
        tracer = labtest.Program([strace, "-c", "-f", "-o", summary, "-p", str(server.pid)])
        try:
            tracer.stderr.expect(r"Process \d+ attached", 10, "strace's stderr")
        except AssertionError:
            raise CellSkipped("strace cannot trace here: %s"
                              % (tracer.stderr.text().strip() or "no answer")) from None
        active = 1 if entry.one_at_a_time else options.settings["syscall_n"]
        result, _ = run_loadgen(options, server, active, 0, options.settings["warmup"],
                                options.settings["window"])
        tracer.process.send_signal(signal.SIGINT)  # strace detaches and writes its table
        tracer.wait(15)
        check_running(server)
    finally:
        if tracer is not None:
            tracer.kill()
        server.kill()
    with open(summary) as table:
        calls = parse_strace_summary(table.read())
    requests = max(result["replies_total"], 1)
    per_request = {name: count / requests for name, count in calls.items()}
    top = sorted(per_request.items(), key=lambda item: -item[1])[:4]
    return {"syscalls_per_request": sum(calls.values()) / requests, "active": active,
            "top": [[name, round(value, 3)] for name, value in top], "calls": calls,
            "loadgen": result, "note": STRACE_NOTE}


# ---- the matrix -----------------------------------------------------------------------

def plan(options):
    """Every cell of the run, in order: (scenario, entry, active, idle)."""
    settings = options.settings
    cells = []
    for scenario in settings["scenarios"]:
        for entry in options.entries:
            if scenario == "throughput":
                counts = [1] if entry.one_at_a_time else settings["connections"]
                cells += [(scenario, entry, n, 0) for n in counts]
            elif scenario == "mixed":
                if not entry.one_at_a_time:
                    cells.append((scenario, entry) + settings["mixed"])
            elif scenario == "capacity":
                cells.append((scenario, entry, 0, settings["capacity"]))
            elif scenario == "idle-cpu":
                cells.append((scenario, entry, 0, IDLE_CPU_CLIENTS))
            else:
                n = 1 if entry.one_at_a_time else settings["syscall_n"]
                cells.append((scenario, entry, n, 0))
    return cells


def measure(options, scenario, entry, active, idle):
    if scenario in ("throughput", "mixed"):
        return throughput(options, entry, active, idle)
    if scenario == "capacity":
        return capacity(options, entry)
    if scenario == "idle-cpu":
        return idle_cpu(options, entry)
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
    return "%.1f system calls per request (%s)" % (
        figures["syscalls_per_request"],
        ", ".join("%s %.2f" % (name, value) for name, value in figures["top"]))


def cell_name(scenario, entry, active, idle, label):
    if scenario == "throughput":
        what = "N=%d" % active
    elif scenario == "mixed":
        what = "%d+%d idle" % (active, idle)
    elif scenario == "syscalls":
        what = "N=%d" % active
    else:
        what = "%d idle" % idle
    return "%-10s %-32s %-12s" % (scenario, label, what)


def run_matrix(options):
    cells = []
    planned = plan(options)
    labels = {entry.key: label_of(entry, options.build_dir) for entry in options.entries}
    for number, (scenario, entry, active, idle) in enumerate(planned, 1):
        cell = {"scenario": scenario, "server": entry.key, "label": labels[entry.key],
                "active": active, "idle": idle, "note": entry.note}
        prefix = "[%2d/%d] %s" % (number, len(planned),
                                  cell_name(scenario, entry, active, idle, labels[entry.key]))
        started = time.monotonic()
        try:
            cell["figures"] = measure(options, scenario, entry, active, idle)
            cell["status"] = "ok"
            summary = describe(cell)
        except CellSkipped as reason:
            cell["status"], cell["reason"] = "skipped", str(reason)
            summary = "skipped: %s" % reason
        except CellFailed as reason:
            cell["status"], cell["reason"] = "failed", str(reason)
            summary = "FAILED: %s" % reason
        cell["seconds"] = round(time.monotonic() - started, 2)
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
             "figure divided by lesson 11 level-triggered's in the same run. ‹...›: "
             "connections that got no answer (starved, unanswered), were not tried in time, "
             "or failed (errors)." % (results["settings"]["warmup"],
                                      results["settings"]["window"])]
    cells = results["cells"]
    for table in (throughput_tables, mixed_table, capacity_table, idle_cpu_table,
                  syscalls_table):
        lines += table(cells)
    notes = {cell["label"]: cell["note"] for cell in cells if cell["note"]}
    if notes:
        lines += ["", "Notes:"] + ["- %s: %s" % note for note in notes.items()]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


CSV_COLUMNS = ["scenario", "server", "label", "active", "idle", "status",
               "requests_per_second", "p50_us", "p99_us", "p999_us", "held",
               "connect_seconds", "rss_kb_per_connection", "threads", "cpu_percent",
               "syscalls_per_request", "replies", "errors", "starved", "unanswered", "reason"]


def write_csv(cells, path):
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for cell in cells:
            row = dict(cell)
            row.update(cell.get("figures", {}))
            for name in ("replies", "errors", "starved", "unanswered"):
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
        if not throughput_cells:
            break
        figure_, axes = plt.subplots(figsize=(8, 5))
        for key, label in server_rows(throughput_cells):
            points = [(cell["active"], cell["figures"][name]) for cell in throughput_cells
                      if cell["server"] == key and cell["figures"][name] is not None]
            if points:
                axes.plot(*zip(*points), marker="o", label=label,
                          linewidth=2.5 if key == REFERENCE else 1.2)
        axes.set_xscale("log")
        counts = sorted({cell["active"] for cell in throughput_cells})
        axes.set_xticks(counts)
        axes.set_xticklabels([str(n) for n in counts])
        axes.minorticks_off()
        if log_y:
            axes.set_yscale("log")
        else:
            axes.set_ylim(bottom=0)
        axes.set_xlabel("active connections N (one request outstanding on each)")
        axes.set_ylabel(ylabel)
        axes.set_title("%s - %s" % (ylabel, results["date"][:10]))
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
        figure_.tight_layout()
        path = os.path.join(out_dir, filename)
        figure_.savefig(path, dpi=100)
        plt.close(figure_)
        written.append(path)
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
        axes.set_title("memory per idle connection - %s" % results["date"][:10])
        axes.grid(True, axis="x", alpha=0.3)
        figure_.tight_layout()
        path = os.path.join(out_dir, "rss_per_connection.png")
        figure_.savefig(path, dpi=100)
        plt.close(figure_)
        written.append(path)
    return written


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
                         idle_cpu_clients=IDLE_CPU_CLIENTS),
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
