#!/usr/bin/env python3
"""variants.py - builds the changed copies of a lesson's program that a guide runs, so that
every transcript in the lab can be made again with one command.

  python3 tests/variants.py --list                 every variant and what it changes
  python3 tests/variants.py 03-no-sigpipe          builds build/variants/03-no-sigpipe/server
  python3 tests/variants.py 03-no-sigpipe --build-dir build-asan --cflags "-fsanitize=address"

A variant is a file tests/variants/NAME.variant:
  lesson: 03-iterative-server
  program: server
  about: what the change shows, in one line
  file: common/NAME.c (optional: the replace/with pairs after it change that file of the
        helper instead of the lesson's program)
  replace: the exact text to find in lessons/LESSON/PROGRAM.c (it must occur once)
  with: what to put there instead
(several replace/with pairs may follow). The copy is compiled with the lab's helper
(common/*.c) and the lab's warnings into BUILD-DIR/variants/NAME/PROGRAM; it prints that
path. Needs a C compiler (cc, or $CC). Standard library only; never touches lessons/.
"""
import argparse
import glob
import os
import shlex
import subprocess
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
LAB_DIR = os.path.dirname(TESTS_DIR)
VARIANTS_DIR = os.path.join(TESTS_DIR, "variants")
WARNINGS = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wformat=2", "-Wstrict-prototypes",
            "-Wmissing-prototypes", "-Wvla"]


def read_variant(name):
    """The fields of tests/variants/NAME.variant: lesson, program, about, link (libraries
    beyond common/, e.g. -luring), and the changes."""
    path = os.path.join(VARIANTS_DIR, name + ".variant")
    if not os.path.isfile(path):
        raise SystemExit("variants.py: no variant %r (see --list)" % name)
    variant = {"changes": []}
    with open(path, encoding="utf-8") as text:
        for number, line in enumerate(text, 1):
            if not line.strip() or line.startswith("#"):
                continue
            key, _, value = line.rstrip("\n").partition(": ")
            if key == "replace":
                variant["changes"].append([value, None, variant.get("file")])
            elif key == "with" and variant["changes"]:
                variant["changes"][-1][1] = value
            elif key in ("lesson", "program", "about", "file", "link"):
                variant[key] = value
            else:
                raise SystemExit("variants.py: %s:%d: unknown line %r" % (path, number, line))
    return variant


def program_path(variant):
    return os.path.join(LAB_DIR, "lessons", variant["lesson"], variant["program"] + ".c")


def changed_sources(variant):
    """{path: text} of every file the variant changes, with its changes made; each text to
    replace must occur exactly once in its file."""
    sources = {}
    for old, new, helper_file in variant["changes"]:
        path = os.path.join(LAB_DIR, helper_file) if helper_file else program_path(variant)
        if path not in sources:
            with open(path, encoding="utf-8") as text:
                sources[path] = text.read()
        if sources[path].count(old) != 1:
            raise SystemExit("variants.py: %r occurs %d times in %s, not once"
                             % (old, sources[path].count(old), path))
        sources[path] = sources[path].replace(old, new)
    return sources


def compiler_command(flags):
    """How the lab compiles a program outside CMake: $CC, C11 with POSIX, the lab's warnings,
    then flags, and common/ on the include path."""
    return (shlex.split(os.environ.get("CC", "cc")) + ["-std=c11", "-D_POSIX_C_SOURCE=200809L"]
            + WARNINGS + list(flags) + ["-I", os.path.join(LAB_DIR, "common")])


def build(name, build_dir, cflags):
    variant = read_variant(name)
    out_dir = os.path.join(build_dir, "variants", name)
    os.makedirs(out_dir, exist_ok=True)
    sources = [program_path(variant)] + sorted(glob.glob(os.path.join(LAB_DIR, "common", "*.c")))
    for path, text in changed_sources(variant).items():  # a changed copy in each one's place
        copy = os.path.join(out_dir, os.path.basename(path))
        with open(copy, "w", encoding="utf-8") as changed:
            changed.write(text)
        sources[sources.index(path)] = copy
    program = os.path.join(out_dir, variant["program"])
    command = (compiler_command(shlex.split(cflags)) + ["-o", program] + sources + ["-pthread"]
               + shlex.split(variant.get("link", "")))  # libraries after the sources
    subprocess.run(command, check=True)
    return program


def main():
    parser = argparse.ArgumentParser(description="Build a changed copy of a lesson's program.")
    parser.add_argument("name", nargs="?", help="a variant, e.g. 03-no-sigpipe")
    parser.add_argument("--list", action="store_true", help="list the variants")
    parser.add_argument("--build-dir", default=os.path.join(LAB_DIR, "build"))
    parser.add_argument("--cflags", default="-g", help="extra compiler flags")
    options = parser.parse_args()
    if options.list or not options.name:
        for path in sorted(glob.glob(os.path.join(VARIANTS_DIR, "*.variant"))):
            name = os.path.basename(path)[:-len(".variant")]
            variant = read_variant(name)
            where = ", ".join(sorted({change[2] or "%s/%s.c" % (variant["lesson"], variant["program"])
                                      for change in variant["changes"]}))
            print("%-28s %s: %s" % (name, where, variant.get("about", "")))
        return 0
    try:
        print(build(options.name, os.path.abspath(options.build_dir), options.cflags))
    except subprocess.CalledProcessError as failure:
        print("variants.py: the compiler failed (status %d)" % failure.returncode,
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
