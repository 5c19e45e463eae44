"""polling_peer - a Python polling echo server with one bug switched on, for the wrong peers.

Lesson 04's shape: non-blocking sockets, one client at a time, a pause of POLL-MS after an
idle round. serve() is correct unless told otherwise; each broken_*.py peer that imports it
turns on one bug, so that a lesson's test is seen to fail on exactly that bug.
Command line as lesson 04: [PORT [BIND-ADDRESS [POLL-MS]]].
"""
import sys
import time

from peerlib import answers_for, listen_from_arguments

OUTPUT_LIMIT = 16 * 1024  # unsent answers beyond this: stop reading (backpressure)


def serve(pause=True, drop_unsent=False, bounded=True):
    """pause=False spins without sleeping; drop_unsent=True forgets what send() did not
    take; bounded=False keeps reading however many answers wait unsent."""
    listener = listen_from_arguments()
    interval = int(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.010
    listener.setblocking(False)
    while True:
        try:
            client, address = listener.accept()
        except BlockingIOError:
            if pause:
                time.sleep(interval)
            continue
        client.setblocking(False)
        print("client connected from %s:%d" % address[:2], flush=True)
        serve_client(client, interval, pause, drop_unsent, bounded)
        client.close()
        print("client %s:%d disconnected" % address[:2], flush=True)


def serve_client(client, interval, pause, drop_unsent, bounded):
    partial, output, ended = b"", bytearray(), False
    while True:
        busy = False
        if not ended and (len(output) < OUTPUT_LIMIT or not bounded):
            try:
                data = client.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                return
            if data is not None:
                busy = True
                ended = not data
                answers, partial = answers_for(partial + data)
                output += answers
        if output:
            try:
                sent = client.send(output)
            except BlockingIOError:
                sent = 0
            except OSError:
                return
            busy = busy or sent > 0
            if drop_unsent:
                output.clear()
            else:
                del output[:sent]
        if ended and not output:
            return
        if pause and not busy:
            time.sleep(interval)
