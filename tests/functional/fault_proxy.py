"""A loopback TCP proxy that can be told to misbehave, for fault tests.

It sits between compute-api and a real neighbour (Glance, Keystone or
memcached) on 127.0.0.1 and, per connection, does what its current ``mode``
says:

``pass``       relay bytes both ways (the neighbour works);
``refuse``     close each new connection at once (the neighbour is down);
``stall``      accept and never answer (the neighbour hangs);
``lose``       relay the request, let the neighbour act, then close the
               connection without relaying its answer (the answer is lost);
               then go back to ``pass``;
``status:N``   answer every HTTP request with status N and an HTML body,
               without contacting the neighbour (the neighbour is failing);
``garbage``    answer with bytes that are not HTTP at all;
``record``     relay one HTTP exchange to the neighbour, unchanged;
``cookie``     the same, adding a ``Set-Cookie`` header to the answer (as a
               load balancer with sticky sessions does);
``drip:S``     answer with a status line and then one header line every S
               seconds, never finishing the answer (a peer, or a middlebox,
               that keeps the connection alive without answering).

Each connection handles one HTTP exchange in the HTTP modes. ``connections``
counts the connections accepted, so tests can see retries; ``requests``
holds the headers of each HTTP request read, as a dict with lower-case
names.
"""

import socket
import threading
import time

_HTML = b'<html><body><h1>Server Error</h1><p>broken</p></body></html>'
COOKIE = b'lb-session=sticky-secret-of-the-last-user; Path=/'


def _read_http_request(sock):
    """Read one HTTP request (headers and Content-Length body) from sock."""
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    length = 0
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.partition(b':')
        if name.strip().lower() == b'content-length':
            length = int(value.strip() or 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b'\r\n\r\n' + body


def _headers(request):
    head = request.partition(b'\r\n\r\n')[0].decode('latin-1')
    fields = (line.partition(':') for line in head.split('\r\n')[1:])
    return {name.strip().lower(): value.strip()
            for name, _, value in fields}


def _one_exchange(head, extra):
    """The request ``head`` made to close its connection after the answer,
    with ``extra`` header lines added."""
    lines = [line for line in head.split(b'\r\n')
             if not line.lower().startswith(b'connection:')]
    return b'\r\n'.join(lines[:1] + extra + lines[1:])


def _relay(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FaultProxy:

    def __init__(self, upstream_port, mode='pass'):
        self.upstream = ('127.0.0.1', upstream_port)
        self.mode = mode
        self.connections = 0
        self.requests = []
        self._sockets = []
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def set_mode(self, mode):
        """Switch mode; open connections are closed so that the change
        applies to the very next request, pooled connections included."""
        self.mode = mode
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    def url(self, path=''):
        return f'http://127.0.0.1:{self.port}{path}'

    def stop(self):
        self._stopped.set()
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self):
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client, self.mode),
                             daemon=True).start()

    def _serve(self, client, mode):
        try:
            if mode != self.mode:   # switched while this one was queued
                mode = self.mode
            if mode == 'refuse':
                client.close()
            elif mode == 'stall':
                while not self._stopped.wait(0.2):
                    pass
            elif mode == 'garbage':
                self._read_request(client)
                client.sendall(b'\x00\xffnot http at all\r\n\r\n')
                client.close()
            elif mode.startswith('status:'):
                self._read_request(client)
                status = int(mode.split(':', 1)[1])
                client.sendall(
                    b'HTTP/1.1 %d Injected\r\nContent-Type: text/html\r\n'
                    b'Content-Length: %d\r\nConnection: close\r\n\r\n%s'
                    % (status, len(_HTML), _HTML))
                client.close()
            elif mode == 'lose':
                self._lose(client)
            elif mode in ('record', 'cookie'):
                self._exchange(client, [b'Set-Cookie: ' + COOKIE]
                               if mode == 'cookie' else [])
            elif mode.startswith('drip:'):
                self._drip(client, float(mode.split(':', 1)[1]))
            else:
                self._pass(client)
        except OSError:
            client.close()

    def _read_request(self, client):
        request = _read_http_request(client)
        self.requests.append(_headers(request))
        return request

    def _exchange(self, client, extra_answer_headers):
        request = self._read_request(client)
        head, _, body = request.partition(b'\r\n\r\n')
        upstream = self._upstream()
        upstream.sendall(_one_exchange(head, [b'Connection: close']) +
                         b'\r\n\r\n' + body)
        answer = b''
        while chunk := upstream.recv(65536):
            answer += chunk
        upstream.close()
        head, _, body = answer.partition(b'\r\n\r\n')
        client.sendall(_one_exchange(
            head, extra_answer_headers + [b'Connection: close']) +
            b'\r\n\r\n' + body)
        client.close()

    def _drip(self, client, interval):
        self._read_request(client)
        client.sendall(b'HTTP/1.1 204 No Content\r\n')
        while not self._stopped.wait(interval):
            client.sendall(b'X-Drip: 1\r\n')   # fails once the client left

    def _upstream(self):
        sock = socket.create_connection(self.upstream, timeout=30)
        self._sockets.append(sock)
        return sock

    def _pass(self, client):
        upstream = self._upstream()
        threading.Thread(target=_relay, args=(upstream, client),
                         daemon=True).start()
        _relay(client, upstream)

    def _lose(self, client):
        request = _read_http_request(client)
        upstream = self._upstream()
        upstream.sendall(request)
        upstream.recv(65536)          # the neighbour has acted and answered
        time.sleep(0.05)
        upstream.close()
        self.mode = 'pass'
        client.close()                # ...and the answer never arrives
