#!/usr/bin/env python3
"""A WRONG select() echo server: it puts every socket in its sets without checking it
against FD_SETSIZE. In C that writes past the fd_set; Python refuses, and the server dies.

Only for proving that the lab's tests fail on it (tests/test_lesson08.py)."""
from eventloop_peer import serve

serve("select")
