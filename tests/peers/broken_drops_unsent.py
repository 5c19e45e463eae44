#!/usr/bin/env python3
"""A WRONG polling echo server: it forgets whatever a non-blocking send() did not take,
as code that sends once and ignores the count does.

Only for proving that the lab's tests fail on it (tests/test_lesson04.py)."""
from polling_peer import serve

serve(drop_unsent=True)
