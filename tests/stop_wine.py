#!/usr/bin/env python3
"""stop_wine.py - ends what the Windows tests started under Wine, and checks that it ended.

The tests start a wineserver that stays between tests (tests/labtest.py), and Wine starts
its own services (services.exe, winedevice.exe, ...). CTest runs this last, after every
Windows test, passed or failed (a cleanup fixture: tests/CMakeLists.txt). It runs
`wineserver -k` for this run's WINEPREFIX, then waits up to 10 s for every process of
that prefix to be gone; what is left it names and kills (Wine's services can outlive a
wineserver that ended early: their parent is gone and nothing else would stop them).
Exit status 1, naming them, if any process of the prefix survives even that.

usage: python3 tests/stop_wine.py      (with the run's WINEPREFIX in the environment)
"""
import os
import shutil
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 10.0


def prefix_of(environment):
    """The Wine prefix a process uses: WINEPREFIX, or Wine's default ~/.wine."""
    prefix = environment.get("WINEPREFIX") or os.path.join(environment.get("HOME", "~"),
                                                            ".wine")
    return os.path.realpath(os.path.expanduser(prefix))


def is_wine_program(program):
    """wine, wine64, wineserver, wine64-preloader...; or a Windows program Wine runs
    (its argv[0] is the .exe's Windows path, e.g. C:\\windows\\system32\\services.exe)."""
    base = program.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return base.startswith("wine") or base.endswith(".exe")


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
                arguments = raw.read().split(b"\0")
        except OSError:
            continue  # gone already, or not ours to read
        environment = {key.decode(errors="replace"): value.decode(errors="replace")
                       for key, value in pairs}
        program = arguments[0].decode(errors="replace")
        if is_wine_program(program) and prefix_of(environment) == prefix:
            command = b" ".join(arguments).decode(errors="replace").strip()
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
    survivors = wait_for_exit(prefix, GRACE_SECONDS)
    if survivors:
        # Seen here: Wine's services left behind by a wineserver that ended before them
        # (their own session, their parent gone): nothing will ever stop them but a kill.
        print("stop_wine.py: outlived wineserver -k under %s, killed:" % prefix)
        for pid, command in survivors:
            print("  %d %s" % (pid, command))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # gone meanwhile
        survivors = wait_for_exit(prefix, GRACE_SECONDS)
    if survivors:
        print("stop_wine.py: still running under %s after SIGKILL:" % prefix)
        for pid, command in survivors:
            print("  %d %s" % (pid, command))
        return 1
    print("stop_wine.py: nothing of the run is left under %s" % prefix)
    return 0


def wait_for_exit(prefix, seconds):
    """Waits up to seconds for the prefix's processes to be gone; returns those left."""
    deadline = time.monotonic() + seconds
    survivors = processes_of(prefix)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)  # waiting for processes to exit, which nothing announces
        survivors = processes_of(prefix)
    return survivors


if __name__ == "__main__":
    sys.exit(main())
