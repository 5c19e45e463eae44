#!/usr/bin/env python3
"""run.py - runs the libFuzzer targets of tests/fuzz/ for a fixed time each, as CI does.

  python3 tests/fuzz/run.py --build-dir build-fuzz --seconds 30     every target, 30 s each
  python3 tests/fuzz/run.py --build-dir build-fuzz --seconds 600 --target line_reader

Each target starts from a copy of its seed corpus (tests/fuzz/corpus/TARGET/), so the
fuzzer's new inputs never land in the repository. A target that crashes or breaks its
property fails the run, and its input is kept in the build directory. Then the planted-bug
check: fuzz_line_reader_planted (an off-by-one in the line reader, tests/fuzz/CMakeLists.txt)
must be caught within --planted-seconds, starting from the seeds without the one that holds
the bug's trigger - else the fuzzing is too weak to trust, and the run fails.
Standard library only; needs a build of the fuzz preset.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

FUZZ_DIR = os.path.dirname(os.path.abspath(__file__))
TARGETS = ["line_reader", "room_commands", "frame_decoder"]
PLANTED = ("line_reader", "one-byte-too-long")  # target, and the seed that is the trigger
# libFuzzer's options for one target. frame_decoder: inputs of at most 4 KB, so that cutting
# each at every offset stays fast (a frame of up to 1 MiB is then announced, not sent whole).
OPTIONS = {"frame_decoder": ["-max_len=4096"]}


def fuzz(binary, seeds, seconds, leave_out=(), options=()):
    """Runs binary for seconds on a copy of the seeds; returns (exit status, its output)."""
    with tempfile.TemporaryDirectory(prefix="lab-fuzz-") as scratch:
        corpus = os.path.join(scratch, "corpus")
        os.mkdir(corpus)
        for name in os.listdir(seeds):
            if name not in leave_out:
                shutil.copy(os.path.join(seeds, name), corpus)
        artifacts = os.path.dirname(binary) + os.sep
        finished = subprocess.run([binary, "-max_total_time=%d" % seconds, "-print_final_stats=1",
                                   "-artifact_prefix=" + artifacts] + list(options) + [corpus],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=seconds * 3 + 60)
        return finished.returncode, finished.stdout.decode("utf-8", "replace")


def summary(output):
    """The lines of libFuzzer's output worth printing."""
    keep = ("Done ", "stat::number_of_executed_units", "ERROR:", "line reader:", "room:",
            "frame decoder:", "SUMMARY:", "Test unit written")
    return "\n".join("  " + line for line in output.splitlines()
                      if line.startswith(keep) or "\tDONE " in line)  # "#N DONE ... corp: N/Nb"


def main():
    parser = argparse.ArgumentParser(description="Run the lab's libFuzzer targets.")
    parser.add_argument("--build-dir", default="build-fuzz")
    parser.add_argument("--seconds", type=int, default=30, help="per target")
    parser.add_argument("--planted-seconds", type=int, default=60)
    parser.add_argument("--target", choices=TARGETS, help="only this one (no planted check)")
    options = parser.parse_args()
    failed = False
    for target in [options.target] if options.target else TARGETS:
        binary = os.path.join(options.build_dir, "tests", "fuzz", "fuzz_" + target)
        started = time.monotonic()
        status, output = fuzz(binary, os.path.join(FUZZ_DIR, "corpus", target), options.seconds,
                              options=OPTIONS.get(target, ()))
        print("fuzz_%s: %s after %.0f s" % (target, "no finding" if status == 0 else
                                           "FINDING (exit %d)" % status,
                                           time.monotonic() - started))
        print(summary(output))
        failed |= status != 0
    if not options.target:
        target, trigger = PLANTED
        binary = os.path.join(options.build_dir, "tests", "fuzz", "fuzz_%s_planted" % target)
        started = time.monotonic()
        status, output = fuzz(binary, os.path.join(FUZZ_DIR, "corpus", target),
                              options.planted_seconds, leave_out=(trigger,))
        found = status != 0 and ("ERROR:" in output or "line reader:" in output)
        print("fuzz_%s_planted: the planted off-by-one %s after %.1f s"
              % (target, "was found" if found else "was NOT found", time.monotonic() - started))
        print(summary(output))
        failed |= not found
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
