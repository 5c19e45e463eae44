#!/usr/bin/env python3
"""A WRONG client for lesson 09: lesson 03's client, which blocks in connect() and lock-steps.

It runs the lab's lesson 03 client, dropping the TIMEOUT-MS argument that client does not
know, so that lesson 09's tests meet a client that waits in connect() for as long as the
kernel retries, and sends one line only after the answer to the one before.
Only for proving that lesson 09's tests fail on it (tests/test_lesson09.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import labtest  # noqa: E402  (tests/ is on the path only from here on)

client = labtest.program_path("03-iterative-server", "client", own=False)
os.execv(client, [client] + sys.argv[1:3])  # HOST PORT, without TIMEOUT-MS
