"""A minimal, fast stand-in for Glance on 127.0.0.1: every request is 204.

Run as its own process (``python -m benchmarks.null_glance``) so that it
never competes for the GIL with the code being measured. It speaks just
enough HTTP/1.1 for keystoneauth1/requests: persistent connections, one
thread per connection, request bodies skipped by ``Content-Length``. It
prints ``PORT <n>`` on stdout once it listens, then serves until it is
terminated or until ``--max-seconds`` have passed (a safety bound).
"""

import argparse
import signal
import socket
import sys
import threading
import time

HOST = '127.0.0.1'
RESPONSE = (b'HTTP/1.1 204 No Content\r\n'
            b'Content-Length: 0\r\n'
            b'x-openstack-request-id: req-null-glance\r\n'
            b'\r\n')
RESPONSE_CLOSE = RESPONSE[:-2] + b'Connection: close\r\n\r\n'
_MAX_HEADER = 64 * 1024


def _header_value(head, name):
    """The value of header ``name`` (lower case bytes) in a request head."""
    for line in head.split(b'\r\n')[1:]:
        key, _, value = line.partition(b':')
        if key.strip().lower() == name:
            return value.strip()
    return None


def _serve_connection(conn, close_always=False):
    """Answer every request on ``conn`` until the client closes it (or,
    with ``close_always``, close it after one answer, as a gunicorn sync
    worker does)."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b''
    try:
        while True:
            end = buf.find(b'\r\n\r\n')
            while end < 0:
                if len(buf) > _MAX_HEADER:
                    return
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                end = buf.find(b'\r\n\r\n')
            head, buf = buf[:end], buf[end + 4:]
            length = int(_header_value(head, b'content-length') or 0)
            while len(buf) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf[length:]
            close = close_always or (
                _header_value(head, b'connection') or b'').lower() == b'close'
            conn.sendall(RESPONSE_CLOSE if close else RESPONSE)
            if close:
                return
    except OSError:
        return
    finally:
        conn.close()


def serve(port=0, max_seconds=3600.0, close_always=False):
    """Serve until terminated (SIGTERM) or ``max_seconds``; then print
    ``CONNECTIONS <n>``, the connections accepted (a client that keeps its
    connections alive opens one and reuses it)."""
    accepted = 0

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen(128)
    listener.settimeout(0.5)
    print(f'PORT {listener.getsockname()[1]}', flush=True)
    deadline = time.monotonic() + max_seconds
    try:
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted += 1
            conn.settimeout(None)
            threading.Thread(target=_serve_connection,
                             args=(conn, close_always), daemon=True).start()
    finally:
        listener.close()
        print(f'CONNECTIONS {accepted}', flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--max-seconds', type=float, default=3600.0,
                        help='stop serving after this long (a safety bound)')
    parser.add_argument('--close', action='store_true',
                        help='close every connection after one answer')
    args = parser.parse_args(argv)
    serve(args.port, args.max_seconds, args.close)
    return 0


if __name__ == '__main__':
    sys.exit(main())
