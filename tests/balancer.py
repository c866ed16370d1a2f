"""A round-robin TCP load balancer for the tests: each new connection goes to the next
backend, as a cloud load balancer in front of several replicas would send it. Bytes are
passed through untouched, in both directions, half-closes included."""
import socket
import threading


class Balancer:
    def __init__(self, listen, backends):
        self.backends = list(backends)
        self.turn = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(listen, reuse_port=False)
        self.server.settimeout(0.2)
        self.closed = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def next_backend(self):
        with self.lock:
            backend = self.backends[self.turn % len(self.backends)]
            self.turn += 1
            return backend

    def accept(self):
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.next_backend(), timeout=5)
            except OSError:
                client.close()  # a backend that is down: the client sees the reset
                continue
            upstream.settimeout(None)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(src, dst), daemon=True).start()

    def close(self):
        self.closed.set()
        self.server.close()


def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass
