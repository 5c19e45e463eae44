"""The transcripts in the guides are what the programs print: each is run again and compared.

A transcript is a fenced block whose first line is "$ build/lessons/NN-slug/PROGRAM ...":
  - a client's block is replayed: the lines marked "<- typed" (with the arrow) are its input,
    "[Ctrl-D]" ends the input, every other line is output it must print, in order. It runs
    against the same lesson's server, started on port 0; the port it printed is read as
    the 5050 of the transcript;
  - a server's block: its first line of output must be what the server prints first
    ("listening on ..."), the port again read as the transcript's.
A block that cannot be replayed this way (a chat where the server types too, a variant
of the program, a timeout against an address that does not answer) is preceded by the
line "<!-- transcript: not replayed: REASON -->", which tests/README.md lists.
"""
import glob
import os
import re
import shlex
import unittest

from labtest import LabTestCase, TESTS_DIR, under_emulator

LABEL = "docs"
LAB_DIR = os.path.dirname(TESTS_DIR)
TYPED = re.compile(r"^(.*?)\s*\u2190 typed\b.*$")
NOT_REPLAYED = "<!-- transcript: not replayed:"
DOCUMENTED_PORT = "5050"


def transcripts(path):
    """Yields (line number, lines, replayed) for each transcript block in a document."""
    lines = open(path, encoding="utf-8").read().split("\n")
    number = 0
    while number < len(lines):
        if lines[number].startswith("```"):
            end = number + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            body = lines[number + 1:end]
            if body and body[0].startswith("$ build/lessons/"):
                before = lines[number - 1] if number > 0 else ""
                yield number + 2, body, not before.startswith(NOT_REPLAYED)
            number = end + 1
        else:
            number += 1


def parse_command(line):
    """('NN-slug', 'server' or 'client', [arguments]) for "$ build/lessons/NN-slug/ROLE ..."."""
    words = shlex.split(line[2:], comments=True)
    lesson, role = words[0].split("/")[2:4]
    return lesson, role, words[1:]


class TranscriptTests(LabTestCase):
    """Every guide's transcripts, replayed; a one-character edit fails this test."""

    def setUp(self):
        super().setUp()
        if under_emulator():
            self.skipTest("the transcripts were taken on Linux")

    def replay_client(self, lesson, arguments, body):
        typed, expected, status = [], [], None
        lines = body[1:]
        while lines and lines[-1].strip() in ("$", ""):
            lines = lines[:-1]  # the shell's prompt after the program ended
        if len(lines) >= 2 and lines[-2] == "$ echo $?":
            status, lines = int(lines[-1]), lines[:-2]  # the exit status, shown
        for line in lines:
            match = TYPED.match(line)
            if line.startswith("[Ctrl-D]"):
                continue  # the end of input: the client's stdin closes after the typed lines
            if match:
                typed.append(match.group(1).rstrip())
            else:
                expected.append(line.rstrip())
        server = self.start_server(["0"], lesson=lesson)
        port = str(server.port)
        host = arguments[0] if arguments else "127.0.0.1"
        rest = [port if word == DOCUMENTED_PORT else word for word in arguments[2:]]
        exit_status, out, err = self.run_program(self.program("client", lesson), [host, port] + rest,
                                            ("\n".join(typed) + "\n").encode())
        printed = [line.replace(":" + port, ":" + DOCUMENTED_PORT) for line in out + err]
        if status is not None:
            expected.append("exit status %d" % status)
            printed.append("exit status %d" % exit_status)
        return expected, printed

    def replay_server(self, lesson, arguments, body):
        server = self.start_server(["0"] + arguments[1:], lesson=lesson)
        first = server.stdout.lines[0].replace(":%d" % server.port, ":" + DOCUMENTED_PORT)
        return body[1:2], [first]

    def test_every_transcript_is_what_the_programs_print(self):
        guides = sorted(glob.glob(os.path.join(LAB_DIR, "lessons", "*", "README.md"))
                        + glob.glob(os.path.join(LAB_DIR, "docs", "*.md")))
        replayed = 0
        for path in guides:
            for line_number, body, replay in transcripts(path):
                if not replay:
                    continue
                lesson, role, arguments = parse_command(body[0])
                where = "%s:%d" % (os.path.relpath(path, LAB_DIR), line_number)
                with self.subTest(transcript=where):
                    if role == "client":
                        expected, printed = self.replay_client(lesson, arguments, body)
                    else:
                        expected, printed = self.replay_server(lesson, arguments, body)
                    self.assertEqual(expected, printed, "%s: the transcript differs from "
                                     "what the program prints now" % where)
                    replayed += 1
        self.assertGreater(replayed, 10, "the transcripts were not found")


if __name__ == "__main__":
    unittest.main()
