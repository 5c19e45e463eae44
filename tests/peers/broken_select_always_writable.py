#!/usr/bin/env python3
"""A WRONG select() echo server: every client is in the write set every round, with or
without answers waiting, so select() returns at once, every round: it spins at 100% CPU.

Only for proving that the lab's tests fail on it (tests/test_lesson08.py)."""
from eventloop_peer import serve

serve("select", always_writable=True)
