#!/usr/bin/env python3
"""A test peer, not a lesson: the seed's non-blocking single-thread Python server, corrected.

The seed document's Python non-blocking server (非阻塞式（单线程）) makes the listener and
every client socket non-blocking and walks a list of clients for ever, trying accept()
and recv() on each. This peer keeps that shape - one thread, non-blocking sockets, a
client list polled in a loop - so the lab's C clients can be tested against a server the
lab's C code did not produce. What it does differently, each a bug in the seed:
  - it answers each line with that same line; a client's partial line waits in that
    client's own buffer until its "\\n" comes (the seed printed whatever one recv() held);
  - a line over LINE_MAX bytes is answered with TOO_LONG_REPLY and skipped;
  - answers the socket cannot take yet wait in the client's pending output, sent on a
    later round; a client whose answers pile up unread is not read from until they
    drain, so a client that never reads costs bounded memory and stalls nobody;
  - only "would block" means "nothing now": a reset ends that client, not the server
    (the seed's bare "except: pass" hid every error);
  - closed clients are dropped by building the next round's list, never by removing
    from the list being walked (which skips the client after each removed one);
  - an idle round sleeps a few milliseconds instead of spinning at 100% CPU.
A client that half-closes (shutdown) still gets every answer before the peer closes.

Usage: seed_nonblocking_server.py [PORT [BIND-ADDRESS]]   (default 5050 127.0.0.1)
Prints "listening on ADDR:PORT", "client connected from ADDR:PORT" and
"client ADDR:PORT disconnected", as the lab's C servers do. Standard library only.
"""
import time

from peerlib import LineAnswerer, address_text, listen_from_arguments, say

OUTPUT_LIMIT = 64 * 1024  # unsent answers beyond this: stop reading that client for now
IDLE_PAUSE = 0.005  # seconds an idle round sleeps: the cost of polling instead of waiting


class Client:
    """One connection's state: its partial input and the answers not yet sent."""

    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        self.answerer = LineAnswerer()
        self.output = b""
        self.input_ended = False  # the client closed its sending side


def accept_new_clients(listener, clients):
    """Accepts every connection waiting now; returns True if there was any."""
    accepted = False
    while True:
        try:
            sock, address = listener.accept()
        except BlockingIOError:
            return accepted  # nobody else is waiting
        except OSError:
            return accepted  # ECONNABORTED, EMFILE: try again next round
        sock.setblocking(False)
        client = Client(sock, address_text(address))
        say("client connected from %s" % client.peer)
        clients.append(client)
        accepted = True


def receive(client):
    """One recv() attempt; returns True if something happened (data or end of stream)."""
    if client.input_ended or len(client.output) >= OUTPUT_LIMIT:
        return False
    try:
        data = client.sock.recv(4096)
    except BlockingIOError:
        return False
    if data:
        client.output += client.answerer.answers(data)
    else:
        client.input_ended = True
    return True


def send_pending(client):
    """One send() attempt of the pending answers; returns True if any bytes left."""
    if not client.output:
        return False
    try:
        sent = client.sock.send(client.output)
    except BlockingIOError:
        return False  # the socket's buffer is full: keep the rest for a later round
    client.output = client.output[sent:]
    return sent > 0


def serve_round(client):
    """Moves what can move now for one client; returns (still open, did something)."""
    try:
        worked = receive(client)
        worked = send_pending(client) or worked
    except OSError:
        return False, True  # reset or broken pipe: this client is finished
    finished = client.input_ended and not client.output
    return not finished, worked


def main():
    listener = listen_from_arguments()
    listener.setblocking(False)
    clients = []
    while True:
        worked = accept_new_clients(listener, clients)
        still_open = []
        for client in clients:
            is_open, did_work = serve_round(client)
            worked = worked or did_work
            if is_open:
                still_open.append(client)
            else:
                client.sock.close()
                say("client %s disconnected" % client.peer)
        clients = still_open
        if not worked:
            time.sleep(IDLE_PAUSE)  # pace: nothing to do, so do not spin


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
