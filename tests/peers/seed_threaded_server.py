#!/usr/bin/env python3
"""A test peer, not a lesson: the seed's threaded Python server, speaking the lab's protocol.

The seed document's Python blocking server (阻塞式（多线程）) accepts clients in a loop and
gives each one a daemon thread with a blocking socket. This peer keeps exactly that shape,
so the lab's C clients can be tested against a server the lab's C code did not produce,
but it behaves as every lab server must:
  - each line is answered with that same line, however recv() cut the bytes (the seed
    answered each recv() with a fixed text, as if one recv() were one message);
  - a line over LINE_MAX bytes is answered with TOO_LONG_REPLY and skipped, and memory
    stays bounded (the seed decoded whatever came);
  - a reset, a broken pipe or any other error ends only that client's thread.

Usage: seed_threaded_server.py [PORT [BIND-ADDRESS]]   (default 5050 127.0.0.1)
Prints "listening on ADDR:PORT", "client connected from ADDR:PORT" and
"client ADDR:PORT disconnected", as the lab's C servers do. Standard library only.
"""
import threading
import time

from peerlib import LineAnswerer, address_text, listen_from_arguments, say


def serve(client, peer):
    """One client's thread: echoes lines until the client leaves or fails."""
    answerer = LineAnswerer()
    try:
        while True:
            data = client.recv(4096)
            if not data:
                break  # end of stream: the client closed (or half-closed) its side
            client.sendall(answerer.answers(data))
    except OSError:
        pass  # reset, broken pipe: this client is gone; the others go on
    finally:
        client.close()
        say("client %s disconnected" % peer)


def main():
    listener = listen_from_arguments()
    while True:
        try:
            client, address = listener.accept()
        except OSError:
            # ECONNABORTED (gone before accept), EMFILE (out of descriptors): one failed
            # accept must not stop the server; the pause keeps EMFILE from spinning.
            time.sleep(0.05)
            continue
        peer = address_text(address)
        say("client connected from %s" % peer)
        # A daemon thread, as in the seed: a killed server does not wait for its clients.
        try:
            threading.Thread(target=serve, args=(client, peer), daemon=True).start()
        except RuntimeError:  # no thread to spare: refuse this client, serve the others
            client.close()
            say("client %s disconnected" % peer)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
