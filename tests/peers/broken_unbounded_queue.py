#!/usr/bin/env python3
"""A WRONG thread pool: its workers are right, but its queue of clients has no bound.

Usage: broken_unbounded_queue.py [PORT [BIND-ADDRESS [WORKERS]]]   (default 5050 127.0.0.1 4)
It prints lesson 07's lines ("client connected from", "worker N serves client",
"client ... disconnected") and serves WORKERS clients at a time, but a newcomer is always
queued, never answered "error: server busy": with every worker held by a silent client, a
flood of newcomers makes the queue - and the descriptors it holds - grow without limit.

Only for proving that lesson 07's tests fail on it (tests/test_lesson07.py)."""
import queue
import sys
import threading

from peerlib import LineAnswerer, address_text, listen_from_arguments, say


def serve(client, peer):
    """Echoes lines until the client leaves or fails, as lab_serve_echo_client() does."""
    answerer = LineAnswerer()
    try:
        while True:
            data = client.recv(4096)
            if not data:
                break
            client.sendall(answerer.answers(data))
    except OSError:
        pass
    finally:
        client.close()
        say("client %s disconnected" % peer)


def worker(number, waiting):
    while True:
        client, peer = waiting.get()
        say("worker %d serves client %s" % (number, peer))
        serve(client, peer)


def main():
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    listener = listen_from_arguments()
    waiting = queue.Queue()  # the bug: no maxsize, so nobody is ever turned away
    for number in range(1, workers + 1):
        threading.Thread(target=worker, args=(number, waiting), daemon=True).start()
    while True:
        client, address = listener.accept()
        peer = address_text(address)
        say("client connected from %s" % peer)
        waiting.put((client, peer))


if __name__ == "__main__":
    main()
