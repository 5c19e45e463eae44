#!/usr/bin/env python3
"""demo.py - plays lesson 01's server and client against each other on loopback.

A short scripted chat, printed as it happens, so a newcomer sees the lab work without a
second terminal. `cmake --build --preset demo` runs it after building every lesson.

  python3 tests/demo.py [--build-dir BUILD] [--emulator wine]

Lines marked '>' are what the script types into a program's stdin; lines marked '|'
are what that program printed.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labtest  # noqa: E402  (the path above must come first)

CONVERSATION = [
    ("hello, server", "hello, client - you reached lesson 01"),
    ("what did you just do?", "socket, bind, listen, accept; now recv and send in turns"),
    ("and I?", "socket and connect; then send and recv in turns"),
]


def show(who, mark, text):
    print("%-6s %s %s" % (who, mark, text), flush=True)


def relay(program, who, pattern):
    line = program.stdout.expect(pattern, 10, who + "'s stdout").group(0)
    show(who, "|", line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(labtest.TESTS_DIR, "..", "build"))
    parser.add_argument("--emulator", default="")
    options = parser.parse_args()
    os.environ["LAB_BUILD_DIR"] = os.path.abspath(options.build_dir)
    os.environ["LAB_EMULATOR"] = options.emulator

    lesson = "01-blocking-chat"
    server = labtest.Server(labtest.command_for(labtest.program_path(lesson, "server"), ["0"]),
                            keep_stdin_open=True)
    client = None
    try:
        show("server", "|", "listening on %s:%d" % (server.host, server.port))
        client = labtest.Program(labtest.command_for(labtest.program_path(lesson, "client"),
                                                     [server.host, str(server.port)]),
                                 keep_stdin_open=True)
        relay(client, "client", r"^connected to .*")
        relay(server, "server", r"^client connected from .*")
        for question, answer in CONVERSATION:
            show("client", ">", question)
            client.write(question.encode() + b"\n")
            relay(server, "server", r"^client: .*")
            show("server", ">", answer)
            server.write(answer.encode() + b"\n")
            relay(client, "client", r"^server: .*")
        show("client", ">", "(end of input)")
        client.close_stdin()
        relay(server, "server", r"^client closed the connection$")
        statuses = (client.wait(), server.wait())
        if statuses != (0, 0):
            raise AssertionError("exit statuses client %d, server %d" % statuses)
    except AssertionError as failure:
        print("demo failed: %s" % failure, file=sys.stderr)
        return 1
    finally:
        server.kill()
        if client:
            client.kill()
    print("\nLesson 01 works: both programs exited 0. Read lessons/01-blocking-chat/README.md "
          "and run them by hand in two terminals.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
