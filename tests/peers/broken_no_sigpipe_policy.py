#!/usr/bin/env python3
"""A WRONG iterative echo server: it keeps SIGPIPE's default action, as a C server does
that never sets a policy, so an answer sent to a client that has gone ends the process.

Only for proving that the tests (and grade.py's scorecard) catch it (tests/test_harness.py)."""
import signal

from peerlib import LineAnswerer, address_text, listen_from_arguments, say

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the bug: Python itself would ignore it
listener = listen_from_arguments()
while True:
    client, address = listener.accept()
    say("client connected from %s" % address_text(address))
    answerer = LineAnswerer()
    try:
        while True:
            data = client.recv(4096)
            if not data:
                break
            client.sendall(answerer.answers(data))
    except ConnectionResetError:
        pass
    client.close()
    say("client %s disconnected" % address_text(address))
