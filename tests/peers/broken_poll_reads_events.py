#!/usr/bin/env python3
"""A WRONG poll() echo server: it reads each entry's events (what it asked for) instead of
revents (what happened), and its sockets block: a recv() on a silent client stalls all.

Only for proving that the lab's tests fail on it (tests/test_lesson10.py)."""
from eventloop_peer import serve

serve("poll", read_events=True, blocking=True)
