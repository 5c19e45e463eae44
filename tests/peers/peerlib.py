"""peerlib - what the Python test peers share: the lab's command line and "listening on".

The peers are servers the lab's C code did not produce: re-implementations of the seed
document's Python servers, and deliberately broken servers that prove a test can fail.
"""
import socket
import sys

LINE_MAX = 1024
TOO_LONG_REPLY = b"error: line too long (limit 1024 bytes)\n"


def listen_from_arguments(backlog=128):
    """Binds per 'server [PORT [BIND-ADDRESS]]' (default 5050 127.0.0.1) and announces it."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5050
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(backlog)
    bound_host, bound_port = listener.getsockname()[:2]
    shown = "[%s]" % bound_host if family == socket.AF_INET6 else bound_host
    print("listening on %s:%d" % (shown, bound_port), flush=True)
    return listener


def answers_for(pending):
    """Splits complete lines off pending bytes; returns (answers, bytes left over)."""
    answers = b""
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        line = line[:-1] if line.endswith(b"\r") else line
        answers += TOO_LONG_REPLY if len(line) > LINE_MAX else line + b"\n"
    return answers, pending
