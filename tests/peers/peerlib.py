"""peerlib - what the Python test peers share: the lab's command line and "listening on".

The peers are servers the lab's C code did not produce: re-implementations of the seed
document's Python servers, and deliberately broken servers that prove a test can fail.
"""
import socket
import sys
import threading

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


_say_lock = threading.Lock()


def say(text):
    """Prints one line to stdout and flushes it; lines from several threads never mix."""
    with _say_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def address_text(address):
    """'127.0.0.1:5050' or '[::1]:5050' for a socket address, as the C programs print it."""
    host, port = address[:2]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


class LineAnswerer:
    """One connection's partial input, bounded as the lab's C line reader is.

    answers_for() alone would hold an endless line in memory; here a line that passes
    LINE_MAX is answered with TOO_LONG_REPLY at once and its remaining bytes skipped."""

    def __init__(self):
        self.pending = b""
        self.discarding = False  # inside an over-long line, waiting for its "\n"

    def answers(self, data):
        """Takes newly received bytes; returns the answers to the lines they complete."""
        self.pending += data
        if self.discarding:
            if b"\n" not in self.pending:
                self.pending = b""
                return b""
            self.pending = self.pending.split(b"\n", 1)[1]
            self.discarding = False
        answers, self.pending = answers_for(self.pending)
        if len(self.pending) > LINE_MAX + 1:  # LINE_MAX bytes and a "\r" may still be fine
            answers += TOO_LONG_REPLY
            self.pending = b""
            self.discarding = True
        return answers
