#!/usr/bin/env python3
"""A WRONG echo server: it serves its first client and never answers a second one.

Only for proving that the lab's tests fail on it (tests/test_harness.py)."""
from peerlib import answers_for, listen_from_arguments

listener = listen_from_arguments()
client, address = listener.accept()
print("client connected from %s:%d" % address[:2], flush=True)
pending = b""
while True:
    data = client.recv(4096)
    if not data:
        break
    answers, pending = answers_for(pending + data)
    client.sendall(answers)
client.close()
while True:  # the bug: later clients wait in the backlog for ever
    listener.accept()[0].recv(1)
