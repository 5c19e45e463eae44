#!/usr/bin/env python3
"""A WRONG edge-triggered epoll echo server: one recv() per readiness report. Bytes left
in the socket after it raise no new report, so a burst is answered only in part.

Only for proving that the lab's tests fail on it (tests/test_lesson11.py)."""
from eventloop_peer import serve

serve("epoll", edge=True)
