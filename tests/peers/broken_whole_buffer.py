#!/usr/bin/env python3
"""A WRONG echo server with the seed's bug: it sends its whole 512-byte buffer each time.

Only for proving that the lab's tests fail on it (tests/test_harness.py)."""
from peerlib import answers_for, listen_from_arguments

listener = listen_from_arguments()
while True:
    client, address = listener.accept()
    print("client connected from %s:%d" % address[:2], flush=True)
    pending = b""
    while True:
        data = client.recv(512)
        if not data:
            break
        answers, pending = answers_for(pending + data)
        if answers:
            client.sendall(answers.ljust(512, b"\0"))  # the bug: send(buf, BUFSIZ)
    client.close()
