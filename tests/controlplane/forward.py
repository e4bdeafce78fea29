"""Forward loopback ports of this network namespace into another one.

    python -m tests.controlplane.forward --netns /proc/PID/ns/net --ready-file F HOSTPORT:PORT ...

etcd and kube-apiserver run in a network namespace of their own that has only loopback:
kube-apiserver dials Service and pod addresses (webhooks, aggregated APIs) that belong to
no machine here and must never leave it. This process listens on 127.0.0.1:HOSTPORT where
it was started, then enters the namespace (setns, which needs root) so that every
connection it opens lands on 127.0.0.1:PORT there. Bytes pass through untouched: TLS is
between the client and kube-apiserver.
"""

import argparse
import asyncio
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000
CHUNK = 1 << 16


def enter_namespace(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


async def pump(reader, writer):
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def handler(port):
    async def connect(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer))
    return connect


async def serve(listeners, ready_file):
    servers = [await asyncio.start_server(handler(port), sock=sock) for sock, port in listeners]
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane.forward")
    parser.add_argument("--netns", required=True, help="the namespace to connect in, e.g. /proc/PID/ns/net")
    parser.add_argument("--ready-file")
    parser.add_argument("ports", nargs="+", metavar="HOSTPORT:PORT")
    args = parser.parse_args(argv)
    listeners = []
    for pair in args.ports:  # listening sockets first, in the namespace we started in
        host_port, port = (int(p) for p in pair.split(":"))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", host_port))
        sock.listen(128)
        listeners.append((sock, port))
    enter_namespace(args.netns)
    try:
        asyncio.run(serve(listeners, args.ready_file))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
