#!/usr/bin/env python3
"""clients.py - opens many clients at once against a lab server, to watch what it does.

  python3 tests/clients.py HOST PORT --count N [--silent | --chatty | --burst K --line-bytes B]
                           [--hold SECONDS]

--silent (the default): the clients connect and say nothing, until Ctrl-C or --hold
    seconds. A client the server writes to or closes is reported (a full queue's
    "error: server busy", a socket past FD_SETSIZE): so it also fills a server's
    descriptors, or its workers, and shows where it stops.
--chatty: each client sends a line a second ("client 3 line 7") and reads its answers;
    one client prints each answer, more print a count a second.
--burst K --line-bytes B: each client writes K lines of B bytes ("0bbb...b\\n", the
    newline included) in one write, reads nothing until all is written, then reads the
    answers. When every answer is back (or the server closed, or --hold passed, 5 s by
    default) it reports, per kind of outcome, which clients got what; exit status 0 only
    if every client got every line back as sent. A burst bigger than the socket buffers
    is never all written if the server stops reading: a client that does not read.

Ctrl-C (or kill) closes every client, reports, and exits. The tool raises its own soft
descriptor limit if N needs it (never the hard one, `ulimit -Hn`).
Python 3 standard library only; used by the guides of lessons 06-11 and tests/.
"""
import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time

BURST_WAIT = 5.0  # seconds a burst waits for its answers when --hold is not given


class Stop(Exception):
    """Ctrl-C or SIGTERM: close everything and report."""


def stop(signum, frame):
    raise Stop()


def say(text):
    print(text, flush=True)


def ranges(numbers):
    """'1-3, 7' for [1, 2, 3, 7]."""
    parts, numbers = [], sorted(numbers)
    start = previous = None
    for number in numbers + [None]:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(str(start) if start == previous else "%d-%d" % (start, previous))
        start = previous = number
    return ", ".join(parts)


def group(outcomes):
    """Prints 'N clients (numbers): outcome', one line per kind of outcome."""
    kinds = {}
    for number, outcome in outcomes:
        kinds.setdefault(outcome, []).append(number)
    for outcome, numbers in sorted(kinds.items(), key=lambda item: min(item[1])):
        say("%d client%s (%s): %s" % (len(numbers), "" if len(numbers) == 1 else "s",
                                     ranges(numbers), outcome))


class Client:
    def __init__(self, number, sock):
        self.number, self.sock = number, sock
        self.received = b""
        self.to_send = b""
        self.ended = None  # None while connected; else why the server ended it
        self.reported = False

    def lines(self):
        return self.received.split(b"\n")[:-1]


def raise_descriptor_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit("clients.py: %d clients need %d descriptors; the hard limit "
                     "(ulimit -Hn) is %d" % (needed - 16, needed, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def connect_all(options, clients):
    for number in range(1, options.count + 1):
        try:
            sock = socket.create_connection((options.host, options.port), timeout=5)
        except OSError as error:
            say("clients.py: connect %s:%d (client %d): %s" % (
                options.host, options.port, number, error.strerror or error))
            break
        sock.setblocking(False)
        clients.append(Client(number, sock))


def read_from(client):
    """Reads what the server sent; returns False once the server has ended the client."""
    try:
        data = client.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError as error:
        client.ended = "reset by the server" if error.errno == errno.ECONNRESET else str(error)
        return False
    if not data:
        client.ended = "closed by the server"
        return False
    client.received += data
    return True


def send_from(client):
    try:
        sent = client.sock.send(client.to_send)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError as error:
        client.ended = "reset by the server" if error.errno in (
            errno.ECONNRESET, errno.EPIPE) else str(error)
        return False
    client.to_send = client.to_send[sent:]
    return True


def news(clients, silent):
    """Reports clients the server wrote to (silent ones only) or ended since the last call."""
    news = []
    for client in clients:
        if client.reported or (client.ended is None and not (silent and client.received)):
            continue
        client.reported = True
        said = silent and client.received.split(b"\n")[0].decode(errors="replace")
        news.append((client.number, "the server said %r%s" % (said, ", then closed" if
                     client.ended == "closed by the server" else "") if said else client.ended))
    group(news)


def run_loop(clients, options, deadline, on_tick=None, done=None, on_io=None):
    """Serves the sockets until the deadline (None: for ever) or done() says so."""
    selector = selectors.DefaultSelector()
    for client in clients:
        events = selectors.EVENT_WRITE if client.to_send else selectors.EVENT_READ
        selector.register(client.sock, events, client)
    next_tick = time.monotonic() + 1
    while True:
        now = time.monotonic()
        if done is not None and done():
            return
        if deadline is not None and now >= deadline:
            return
        if on_tick is not None and now >= next_tick:
            on_tick()
            next_tick += 1
            for client in clients:  # the tick queued lines: wait for room to send them
                key = selector.get_map().get(client.sock)
                if key is not None and client.to_send and key.events != selectors.EVENT_WRITE:
                    selector.modify(client.sock, selectors.EVENT_WRITE, client)
        wait = next_tick - now if on_tick is not None else 0.5
        if deadline is not None:
            wait = min(wait, deadline - now)
        for key, mask in selector.select(max(wait, 0)):
            client = key.data
            alive = True
            if mask & selectors.EVENT_WRITE:
                alive = send_from(client)
            elif mask & selectors.EVENT_READ:
                alive = read_from(client)
            if not alive:
                selector.unregister(client.sock)
            elif not client.to_send and key.events != selectors.EVENT_READ:
                selector.modify(client.sock, selectors.EVENT_READ, client)  # all written
        if on_io is not None:
            on_io()
        if options.mode != "burst":
            news(clients, options.mode == "silent")


def burst_report(clients, options, sent_lines):
    say("%d client%s, each %d line%s of %d bytes in one write:" % (
        len(clients), "" if len(clients) == 1 else "s", options.burst,
        "" if options.burst == 1 else "s", options.line_bytes))
    outcomes, perfect = [], True
    for client in clients:
        got = client.lines()
        same = sum(1 for a, b in zip(got, sent_lines) if a == b)
        if client.to_send:
            outcome = "still writing: %d of %d bytes written, nothing read" % (
                len(sent_lines) * options.line_bytes - len(client.to_send),
                len(sent_lines) * options.line_bytes)
        elif len(got) >= len(sent_lines) and same == len(sent_lines):
            outcome = "every line back, as sent"
        else:
            different = [line for line, expected in zip(got, sent_lines) if line != expected]
            outcome = "%d of %d lines back" % (same, len(sent_lines))
            if different:
                outcome += ", and %r" % different[0][:40].decode(errors="replace")
        if client.ended is not None and outcome != "every line back, as sent":
            outcome += "; %s" % client.ended
        perfect = perfect and outcome == "every line back, as sent"
        outcomes.append((client.number, outcome))
    group(outcomes)
    return perfect


def main():
    parser = argparse.ArgumentParser(
        usage="%(prog)s HOST PORT --count N [--silent | --chatty | --burst K --line-bytes B] "
              "[--hold SECONDS]",
        description=__doc__.split("\n\n")[0].split(" - ", 1)[1],
        epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host", metavar="HOST")
    parser.add_argument("port", metavar="PORT", type=int)
    parser.add_argument("--count", metavar="N", type=int, required=True, help="clients to open")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--silent", dest="mode", action="store_const", const="silent",
                       help="connect and say nothing (the default)")
    modes.add_argument("--chatty", dest="mode", action="store_const", const="chatty",
                       help="a line a second from each client")
    modes.add_argument("--burst", metavar="K", type=int,
                       help="K lines in one write from each client (with --line-bytes)")
    parser.add_argument("--line-bytes", metavar="B", type=int,
                        help="bytes per burst line, newline included (at least 2)")
    parser.add_argument("--hold", metavar="SECONDS", type=float,
                        help="keep the clients this long (default: until Ctrl-C; a burst: "
                             "until every answer is back, at most 5 s)")
    options = parser.parse_args()
    if options.burst is not None:
        options.mode = "burst"
        if options.burst < 1 or options.line_bytes is None or options.line_bytes < 2:
            parser.error("--burst K needs K >= 1 and --line-bytes B with B >= 2")
    elif options.line_bytes is not None:
        parser.error("--line-bytes goes with --burst")
    options.mode = options.mode or "silent"
    if options.count < 1:
        parser.error("--count must be at least 1")

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    raise_descriptor_limit(options.count + 16)
    clients = []
    status = 0
    try:
        start = time.monotonic()
        connect_all(options, clients)
        if not clients:
            return 1
        say("%d client%s connected to %s:%d (%s)%s" % (
            len(clients), "" if len(clients) == 1 else "s", options.host, options.port,
            options.mode, "" if options.hold is not None or options.mode == "burst"
            else "; Ctrl-C closes them"))
        deadline = None if options.hold is None else start + options.hold
        if options.mode == "burst":
            sent_lines = [(b"%d" % n + b"b" * options.line_bytes)[:options.line_bytes - 1]
                          for n in range(options.burst)]
            burst = b"".join(line + b"\n" for line in sent_lines)
            for client in clients:
                client.to_send = burst
                send_from(client)  # the one write; the rest (if any) as room appears
            wait_until = deadline if deadline is not None else time.monotonic() + BURST_WAIT
            try:
                run_loop(clients, options, wait_until, done=lambda: all(
                    c.ended is not None or (not c.to_send and len(c.lines()) >= options.burst)
                    for c in clients))
            finally:
                status = 0 if burst_report(clients, options, sent_lines) else 1
            if deadline is not None:
                run_loop(clients, options, deadline)
        elif options.mode == "chatty":
            counts = {"sent": 0, "printed": 0, "round": 0}

            def tick():
                if counts["sent"] and len(clients) > 1:
                    say("%d lines sent, %d answered" % (
                        counts["sent"], sum(len(c.lines()) for c in clients)))
                counts["round"] += 1
                for client in clients:
                    if client.ended is None:
                        counts["sent"] += 1
                        client.to_send += b"client %d line %d\n" % (
                            client.number, counts["round"])

            def print_answers():
                if len(clients) == 1:
                    for line in clients[0].lines()[counts["printed"]:]:
                        say(line.decode(errors="replace"))
                    counts["printed"] = len(clients[0].lines())
            tick()
            run_loop(clients, options, deadline, on_tick=tick, on_io=print_answers)
        else:
            run_loop(clients, options, deadline)
    except Stop:
        pass
    finally:
        ended = sum(1 for c in clients if c.ended is not None)
        for client in clients:
            client.sock.close()
        if clients and options.mode != "burst":
            say("closed %d client%s%s" % (len(clients), "" if len(clients) == 1 else "s",
                "" if not ended else " (%d had been ended by the server)" % ended))
    return status


if __name__ == "__main__":
    sys.exit(main())
