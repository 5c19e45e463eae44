#!/usr/bin/env python3
"""A WRONG echo server: it answers what its first recv() brought and ignores the rest.

Only for proving that the lab's tests fail on it (tests/test_harness.py)."""
from peerlib import listen_from_arguments

listener = listen_from_arguments()
while True:
    client, address = listener.accept()
    print("client connected from %s:%d" % address[:2], flush=True)
    client.sendall(client.recv(4096))  # the bug: one recv() taken as one whole message
    while client.recv(4096):
        pass
    client.close()
