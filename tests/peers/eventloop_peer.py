"""eventloop_peer - a Python echo server on select, poll or epoll, with one mistake chosen
by the caller: the wrong event loops that prove the tests of lessons 08, 10 and 11 fail.

Each broken_*.py file calls serve() with its mistake; none of them is a model to copy."""
import select
import socket

from peerlib import LineAnswerer, address_text, listen_from_arguments, say


class Client:
    def __init__(self, sock, address):
        self.sock = sock
        self.peer = address_text(address)
        self.answerer = LineAnswerer()
        self.output = b""


def serve(loop, always_writable=False, read_events=False, edge=False, blocking=False):
    """Runs an echo server whose loop waits with loop ('select', 'poll' or 'epoll')."""
    listener = listen_from_arguments()
    listener.setblocking(False)
    clients = {}  # by descriptor number: these wrong servers take no care with fd reuse
    waiter = {"select": SelectWaiter, "poll": PollWaiter, "epoll": EpollWaiter}[loop](
        always_writable, read_events, edge)
    while True:
        for fd in waiter.wait(listener, clients):
            if fd == listener.fileno():
                accept_all(listener, clients, waiter, blocking)
            elif fd in clients:
                serve_once(clients, clients[fd], waiter)


def accept_all(listener, clients, waiter, blocking):
    while True:
        try:
            sock, address = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(blocking)
        client = Client(sock, address)
        clients[sock.fileno()] = client
        waiter.add(sock.fileno())
        say("client connected from %s" % client.peer)


def serve_once(clients, client, waiter):
    """One recv() and one send() per readiness report, whatever is left."""
    try:
        data = client.sock.recv(1024)
        if not data:
            return drop(clients, client, waiter)
        client.output += client.answerer.answers(data)
    except BlockingIOError:
        pass
    except OSError:
        return drop(clients, client, waiter)
    try:
        if client.output:
            client.output = client.output[client.sock.send(client.output):]
    except BlockingIOError:
        pass
    except OSError:
        drop(clients, client, waiter)


def drop(clients, client, waiter):
    waiter.remove(client.sock.fileno())
    del clients[client.sock.fileno()]
    client.sock.close()
    say("client %s disconnected" % client.peer)


class SelectWaiter:
    def __init__(self, always_writable, read_events, edge):
        self.always_writable = always_writable

    def add(self, fd):
        pass

    def remove(self, fd):
        pass

    def wait(self, listener, clients):
        wanted = [listener] + [client.sock for client in clients.values()]
        writers = [client.sock for client in clients.values()
                   if client.output or self.always_writable]
        readable, writable, _ = select.select(wanted, writers, [])  # no FD_SETSIZE check
        return {sock.fileno() for sock in readable + writable}


class PollWaiter:
    def __init__(self, always_writable, read_events, edge):
        self.read_events = read_events
        self.poller = select.poll()
        self.events = {}

    def add(self, fd):
        self.events[fd] = select.POLLIN
        self.poller.register(fd, select.POLLIN)

    def remove(self, fd):
        self.events.pop(fd, None)
        self.poller.unregister(fd)

    def wait(self, listener, clients):
        if listener.fileno() not in self.events:
            self.add(listener.fileno())
        ready = self.poller.poll()
        if self.read_events:  # the mistake: what was asked for, not what happened
            return [fd for fd, events in self.events.items() if events & select.POLLIN]
        return [fd for fd, revents in ready]


class EpollWaiter:
    def __init__(self, always_writable, read_events, edge):
        self.flags = select.EPOLLIN | (select.EPOLLET if edge else 0)
        self.epoll = select.epoll()
        self.listener = None

    def add(self, fd):
        self.epoll.register(fd, self.flags)

    def remove(self, fd):
        self.epoll.unregister(fd)

    def wait(self, listener, clients):
        if self.listener is None:
            self.listener = listener.fileno()
            self.epoll.register(self.listener, select.EPOLLIN)
        return [fd for fd, events in self.epoll.poll()]
