#!/usr/bin/env python3
"""loop_costs.py - what an event loop does per request, counted while loadgen runs at full
speed: system calls, wait calls (select/poll/epoll_wait), sleeps, CPU (user and system), of
the server and of the load generator. docs/benchmarks.md uses it to explain why select and
poll can lead epoll in raw throughput at N = 100 and 1000.

usage: python3 tests/bench/loop_costs.py [--build-dir build-bench] [--servers 08,10,11-level]
                                         [--connections 10,100,1000] [--rounds 3]
                                         [--warmup 1] [--window 4] [--pin]
                                         [--out FILE.json] [--csv FILE.csv]

Each cell starts one server (as run.py does), runs tests/bench/loadgen against it, and once
loadgen's window has begun counts for WINDOW - 0.5 seconds:
  - with `perf stat -x, -e EVENTS -p PID -- sleep T` (Linux perf, Debian linux-perf), one for
    the server and one for loadgen: every system call (raw_syscalls:sys_enter), the waiting
    calls (syscalls:sys_enter_pselect6, _poll, _epoll_wait), epoll_ctl, the data calls
    (recvfrom, sendto, read, write) and task-clock. Tracepoints count in the kernel: the
    process is not stopped at each call as under strace, so these are counts at (nearly) full
    speed;
  - from /proc/PID/stat and /proc/PID/status, before and after: user and system CPU time
    (clock ticks), voluntary context switches (each one a sleep: the process blocked in a
    wait call with nothing ready) and involuntary ones (preempted);
  - from /proc/PID/schedstat, before and after: the share of the time each one ran on a CPU
    and the share it was runnable but waiting for one;
  - every 10 ms, the CPU each one last ran on (/proc/PID/stat field 39): the share of
    samples with both on the same CPU, i.e. taking turns on one core instead of running
    side by side; and from /proc/stat how much of the machine's cores stood idle meanwhile.
--pin puts the server on CPU 0 and loadgen on CPU 1 (sched_setaffinity) so that the
scheduler cannot put them on one CPU. --csv appends one row per cell to a CSV file
(docs/benchmarks/loop_costs.csv is four runs of it).
Requests in that time = loadgen's requests per second (its whole window) x T. Every figure is
then divided by the requests: calls per request, requests per wait call, microseconds of CPU
per request. Rounds interleave the servers (round 1 in the given order, round 2 reversed...);
the table gives each round's figures and the median. Without perf the counts are skipped and
the /proc figures still come.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import run  # noqa: E402  (run.py: the servers, how to start them and run loadgen)

EVENTS = ["task-clock", "cpu-migrations", "raw_syscalls:sys_enter", "syscalls:sys_enter_pselect6",
          "syscalls:sys_enter_poll", "syscalls:sys_enter_epoll_wait",
          "syscalls:sys_enter_epoll_ctl", "syscalls:sys_enter_recvfrom",
          "syscalls:sys_enter_sendto", "syscalls:sys_enter_read", "syscalls:sys_enter_write"]
WAITS = ("pselect6", "poll", "epoll_wait")
TICK = os.sysconf("SC_CLK_TCK")


def proc_figures(pid):
    """(user s, system s, voluntary switches, involuntary switches) of pid, all threads."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    user, system = int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime
    switches = {}
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                switches[name] = int(value)
    return (user, system, switches["voluntary_ctxt_switches"],
            switches["nonvoluntary_ctxt_switches"])


def schedstat(pid):
    """(ns on a CPU, ns runnable but waiting for a CPU) of pid's main thread."""
    with open("/proc/%d/schedstat" % pid) as stat:
        running, waiting, _ = stat.read().split()
    return int(running), int(waiting)


def idle_seconds():
    """Seconds all CPUs have been idle (idle + iowait of /proc/stat's cpu line)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return (int(fields[4]) + int(fields[5])) / TICK


def processor(pid):
    """The CPU pid last ran on (field 39 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[36])


def start_perf(pid, seconds):
    if shutil.which("perf") is None:
        return None
    return subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(EVENTS), "-p", str(pid),
                             "--", "sleep", "%.2f" % seconds],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_counts(process):
    """{event short name: count} from perf stat -x, (task-clock in ms)."""
    if process is None:
        return {}
    _, err = process.communicate(timeout=30)
    counts = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) < 3:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue  # <not counted>, <not supported>
        name = parts[2].split(":")[-1].replace("sys_enter_", "").replace("sys_enter",
                                                                         "all_syscalls")
        counts[name.replace("-", "_") if name != "task-clock" else name] = value
    return counts


def measure(options, entry, active):
    server = run.start_server(entry, options.build_dir)
    if options.pin:
        os.sched_setaffinity(server.pid, {0})
    seconds = options.window - 0.5
    try:
        def during(loadgen):
            pids = {"server": server.pid, "loadgen": loadgen.pid}
            if options.pin:
                os.sched_setaffinity(loadgen.pid, {1})
            before = {who: proc_figures(pid) + schedstat(pid) for who, pid in pids.items()}
            perfs = {who: start_perf(pid, seconds) for who, pid in pids.items()}
            started, idle_before = time.monotonic(), idle_seconds()
            samples = same = 0
            while time.monotonic() - started < seconds:  # where each one last ran
                time.sleep(0.01)
                samples += 1
                same += processor(pids["server"]) == processor(pids["loadgen"])
            counts = {who: perf_counts(perf) for who, perf in perfs.items()}
            took, idle = time.monotonic() - started, idle_seconds() - idle_before
            after = {who: proc_figures(pid) + schedstat(pid) for who, pid in pids.items()}
            return before, after, counts, took, (same / max(samples, 1), idle / took)

        result, (before, after, counts, took, (same_cpu, idle_cores)) = run.run_loadgen(
            options, server, active, 0, options.warmup, options.window, during)
        run.check_running(server)
    finally:
        server.kill()
    requests = result["requests_per_second"] * seconds
    cell = {"key": entry.key, "active": active,
            "requests_per_second": result["requests_per_second"],
            "p99_us": result["p99_us"], "problems": run.problems_text(
                {"figures": {"loadgen": result}}), "seconds": seconds, "took": took,
            "same_cpu_share": same_cpu, "idle_cores": idle_cores}
    for who in ("server", "loadgen"):
        user = after[who][0] - before[who][0]
        system = after[who][1] - before[who][1]
        mine = {"user_us_per_request": user / requests * 1e6,
                "sys_us_per_request": system / requests * 1e6,
                "cpu_share": (user + system) / took,
                "sleeps_per_request": (after[who][2] - before[who][2]) / requests,
                "preempted_per_request": (after[who][3] - before[who][3]) / requests,
                "on_cpu_share": (after[who][4] - before[who][4]) / 1e9 / took,
                "runnable_wait_share": (after[who][5] - before[who][5]) / 1e9 / took,
                "runnable_wait_us_per_request": (after[who][5] - before[who][5]) / 1e3
                / requests}
        got = counts[who]
        if got:
            mine["task_clock_us_per_request"] = got.get("task-clock", 0) * 1e3 / requests
            for name, value in got.items():
                if name != "task-clock":
                    mine[name + "_per_request"] = value / requests
            waits = sum(got.get(name, 0) for name in WAITS)
            mine["wait_calls_per_request"] = waits / requests
            mine["requests_per_wait_call"] = requests / waits if waits else None
            mine["sleeps_per_wait_call"] = ((after[who][2] - before[who][2]) / waits
                                            if waits else None)
        cell[who] = mine
    return cell


def median(values):
    values = sorted(value for value in values if value is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


ROWS = [("requests_per_second", None, "requests/s (perf counting)", 0),
        ("all_syscalls_per_request", "server", "server: system calls per request", 2),
        ("wait_calls_per_request", "server", "server: wait calls per request", 4),
        ("requests_per_wait_call", "server", "server: requests per wait call", 1),
        ("epoll_ctl_per_request", "server", "server: epoll_ctl per request", 3),
        ("sleeps_per_request", "server", "server: sleeps (voluntary switches) per request", 4),
        ("preempted_per_request", "server", "server: preemptions per request", 4),
        ("user_us_per_request", "server", "server: user CPU µs per request", 2),
        ("sys_us_per_request", "server", "server: system CPU µs per request", 2),
        ("on_cpu_share", "server", "server: share of the time on a CPU (schedstat)", 2),
        ("runnable_wait_share", "server", "server: share of the time runnable, waiting for a CPU", 2),
        ("cpu_migrations_per_request", "server", "server: CPU migrations per request", 4),
        ("all_syscalls_per_request", "loadgen", "loadgen: system calls per request", 2),
        ("requests_per_wait_call", "loadgen", "loadgen: requests per epoll_wait", 1),
        ("sleeps_per_request", "loadgen", "loadgen: sleeps per request", 4),
        ("user_us_per_request", "loadgen", "loadgen: user CPU µs per request", 2),
        ("sys_us_per_request", "loadgen", "loadgen: system CPU µs per request", 2),
        ("preempted_per_request", "loadgen", "loadgen: preemptions per request", 4),
        ("on_cpu_share", "loadgen", "loadgen: share of the time on a CPU (schedstat)", 2),
        ("runnable_wait_share", "loadgen", "loadgen: share of the time runnable, waiting for a CPU", 2),
        ("cpu_migrations_per_request", "loadgen", "loadgen: CPU migrations per request", 4),
        ("same_cpu_share", None, "samples with server and loadgen on the same CPU", 2),
        ("idle_cores", None, "cores idle meanwhile (of %d, /proc/stat)" % os.cpu_count(), 2)]


CSV_FIGURES = [("all_syscalls_per_request", "syscalls"), ("wait_calls_per_request", "wait_calls"),
               ("requests_per_wait_call", "requests_per_wait"), ("epoll_ctl_per_request",
                                                                 "epoll_ctl"),
               ("sleeps_per_request", "sleeps"), ("preempted_per_request", "preempted"),
               ("user_us_per_request", "user_us"), ("sys_us_per_request", "sys_us"),
               ("on_cpu_share", "on_cpu"), ("runnable_wait_share", "runnable_wait")]
CSV_COLUMNS = (["run_ended", "pinned", "load_average_at_start", "round", "N", "server",
                "requests_per_second", "p99_us", "same_cpu_share", "idle_cores"]
               + ["%s_%s" % (who, short) for who in ("server", "loadgen")
                  for _, short in CSV_FIGURES])


def write_csv(results, path):
    """One row per cell, appended to path (the header first if path is new): what
    docs/benchmarks/loop_costs.csv holds."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as out:
        writer = csv.writer(out)
        if new:
            writer.writerow(CSV_COLUMNS)
        for cell in results["cells"]:
            row = [results["date"][11:19], int(results["pinned"]),
                   "%.2f" % results["load_average_at_start"][0], cell["round"], cell["active"],
                   cell["key"], "%.0f" % cell["requests_per_second"], "%.0f" % cell["p99_us"],
                   "%.2f" % cell["same_cpu_share"], "%.2f" % cell["idle_cores"]]
            for who in ("server", "loadgen"):
                for name, _ in CSV_FIGURES:
                    value = cell[who].get(name)
                    row.append("" if value is None else "%.4g" % value)
            writer.writerow(row)


def table(cells, keys, counts):
    lines = []
    for active in counts:
        lines += ["", "N = %d (median of %d rounds; each round's figure in brackets)"
                  % (active, max(len([c for c in cells if c["active"] == active
                                      and c["key"] == key]) for key in keys)), ""]
        header = ["figure"] + keys
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, who, title, digits in ROWS:
            row = [title]
            for key in keys:
                mine = [c for c in cells if c["active"] == active and c["key"] == key]
                values = [(c[who] if who else c).get(name) for c in mine]
                middle = median(values)
                text = "-" if middle is None else "{:,.{}f}".format(middle, digits)
                if len(values) > 1 and middle is not None:
                    text += " (%s)" % ", ".join("-" if v is None else "{:,.{}f}".format(v, digits)
                                                for v in values)
                row.append(text)
            lines.append("| " + " | ".join(row) + " |")
        problems = sorted({"%s: %s" % (c["key"], c["problems"]) for c in cells
                           if c["active"] == active and c["problems"]})
        if problems:
            lines.append("")
            lines.append("Not every connection served: " + "; ".join(problems))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(run.SOURCE_DIR, "build-bench"))
    parser.add_argument("--servers", default="08,10,11-level,11-edge,uv")
    parser.add_argument("--connections", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument("--out", help="write every cell as JSON here")
    parser.add_argument("--csv", help="append one row per cell to this CSV file")
    parser.add_argument("--pin", action="store_true", help="the server on CPU 0, loadgen on "
                        "CPU 1 (sched_setaffinity; loadgen from the start of its window): the "
                        "scheduler cannot put them on one CPU")
    options = parser.parse_args()
    options.build_dir = os.path.abspath(options.build_dir)
    options.loadgen = os.path.join(options.build_dir, "tests", "bench", "loadgen")
    options.settings = {"connect_timeout": 10.0}
    keys = options.servers.split(",")
    entries = [entry for key in keys for entry in run.SERVERS if entry.key == key]
    counts = [int(n) for n in options.connections.split(",")]
    if shutil.which("perf") is None:
        print("loop_costs: perf is not installed (Debian: apt-get install linux-perf): "
              "system calls are not counted, CPU and sleeps still are", file=sys.stderr)
    load = os.getloadavg()
    print("loop_costs: load average at start %.2f, %.2f, %.2f" % load, flush=True)
    cells = []
    for round_ in range(options.rounds):
        order = entries if round_ % 2 == 0 else entries[::-1]
        for active in counts:
            for entry in order:
                cell = measure(options, entry, active)
                cell["round"] = round_ + 1
                cells.append(cell)
                server = cell["key"]
                print("round %d N=%-5d %-9s %8.0f req/s  server %.2f calls/req, %.1f req/wait, "
                      "%.4f sleeps/req, %.2f+%.2f us/req, on CPU %.2f, waiting %.2f; loadgen "
                      "%.1f req/wait, %.2f+%.2f us/req, on CPU %.2f, waiting %.2f; same CPU "
                      "%.2f, idle cores %.2f %s" % (
                          round_ + 1, active, server, cell["requests_per_second"],
                          cell["server"].get("all_syscalls_per_request", 0),
                          cell["server"].get("requests_per_wait_call") or 0,
                          cell["server"]["sleeps_per_request"],
                          cell["server"]["user_us_per_request"],
                          cell["server"]["sys_us_per_request"],
                          cell["server"]["on_cpu_share"], cell["server"]["runnable_wait_share"],
                          cell["loadgen"].get("requests_per_wait_call") or 0,
                          cell["loadgen"]["user_us_per_request"],
                          cell["loadgen"]["sys_us_per_request"],
                          cell["loadgen"]["on_cpu_share"],
                          cell["loadgen"]["runnable_wait_share"], cell["same_cpu_share"],
                          cell["idle_cores"],
                          cell["problems"]),
                      flush=True)
    results = {"date": run.datetime.datetime.now(run.datetime.timezone.utc).isoformat(
                   timespec="seconds"),
               "command": " ".join(["python3", os.path.relpath(__file__, run.SOURCE_DIR)]
                                   + sys.argv[1:]),
               "pinned": options.pin, "load_average_at_start": list(load), "load_average_at_end":
                   list(os.getloadavg()), "machine": run.describe_machine(options.build_dir),
               "events": EVENTS, "cells": cells}
    if options.out:
        with open(options.out, "w") as out:
            json.dump(results, out, indent=1)
    if options.csv:
        write_csv(results, options.csv)
    print(table(cells, keys, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
