#!/usr/bin/env python3
"""A WRONG polling echo server: it reads all a client sends, however many answers that
client leaves unread, so its memory grows without bound (no backpressure).

Only for proving that the lab's tests fail on it (tests/test_lesson04.py)."""
from polling_peer import serve

serve(bounded=False)
