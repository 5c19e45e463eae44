#!/usr/bin/env python3
"""stop_wine.py - ends what the Windows tests started under Wine, and checks that it ended.

The tests start a wineserver that stays between tests (tests/labtest.py), and Wine starts
its own services (services.exe, winedevice.exe, ...). CTest runs this last, after every
Windows test, passed or failed (a cleanup fixture: tests/CMakeLists.txt). It runs
`wineserver -k` for this run's WINEPREFIX, then waits up to 10 s for every process of
that prefix to be gone. Exit status 1, naming the survivors, if any outlives the run.

usage: python3 tests/stop_wine.py      (with the run's WINEPREFIX in the environment)
"""
import os
import shutil
import subprocess
import sys
import time

GRACE_SECONDS = 10.0


def prefix_of(environment):
    """The Wine prefix a process uses: WINEPREFIX, or Wine's default ~/.wine."""
    prefix = environment.get("WINEPREFIX") or os.path.join(environment.get("HOME", "~"),
                                                            ".wine")
    return os.path.realpath(os.path.expanduser(prefix))


def processes_of(prefix):
    """(pid, command line) of this user's processes that run under the given prefix."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != os.getuid():
                continue
            with open("/proc/%s/environ" % name, "rb") as raw:
                pairs = [item.split(b"=", 1) for item in raw.read().split(b"\0") if b"=" in item]
            with open("/proc/%s/cmdline" % name, "rb") as raw:
                command = raw.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone already, or not ours to read
        environment = {key.decode(errors="replace"): value.decode(errors="replace")
                       for key, value in pairs}
        is_wine = "wine" in command or command.lower().split(" ")[0].endswith(".exe")
        if is_wine and prefix_of(environment) == prefix:
            found.append((int(name), command))
    return found


def main():
    if not os.path.isdir("/proc"):
        print("stop_wine.py: no /proc here: nothing checked")
        return 0
    wineserver = shutil.which("wineserver") or "/usr/lib/wine/wineserver"
    prefix = prefix_of(os.environ)
    if os.path.exists(wineserver):
        subprocess.run([wineserver, "-k"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    deadline = time.monotonic() + GRACE_SECONDS
    survivors = processes_of(prefix)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)  # waiting for processes to exit, which nothing announces
        survivors = processes_of(prefix)
    if survivors:
        print("stop_wine.py: still running under %s after wineserver -k:" % prefix)
        for pid, command in survivors:
            print("  %d %s" % (pid, command))
        return 1
    print("stop_wine.py: nothing of the run is left under %s" % prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
