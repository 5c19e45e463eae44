#!/usr/bin/env python3
"""A WRONG polling echo server: it never pauses, so it spins at 100% CPU while idle (and
ignores POLL-MS, answering at once).

Only for proving that the lab's tests fail on it (tests/test_lesson04.py)."""
from polling_peer import serve

serve(pause=False)
