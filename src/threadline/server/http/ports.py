"""The ports ``threadline serve`` listens on, claimed before it creates or prints anything.

uvicorn and gRPC bind their ports only once the server starts, after the first start
has made the default project and printed its key: a port already taken (4317 is what
the OpenTelemetry Collector, Jaeger and Phoenix listen on) then ended in a traceback,
and the key shown "once" was gone. ``claim`` binds each port first and turns a clash
into one line that names the flag to change.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from threadline.server.settings import Settings


class PortUnavailable(Exception):
    """A port cannot be bound; the message is one line meant for the person starting."""


@dataclass(frozen=True)
class _Port:
    number: int
    flag: str
    env: str
    serves: str
    hint: str = ""


def claim(settings: Settings) -> list[socket.socket]:
    """Bind the HTTP port and (unless 0) the gRPC port on ``settings.host``, as the servers
    will (SO_REUSEADDR, so a restart is not refused for connections in TIME_WAIT).

    The caller closes the sockets just before the servers bind: the ports are held while
    the store is opened and the first start prints. Raises ``PortUnavailable``.
    """
    ports = [_Port(settings.port, "--port", "THREADLINE_PORT", "HTTP (web UI, API, OTLP/HTTP)")]
    if settings.grpc_port:
        if settings.grpc_port == settings.port:
            raise PortUnavailable(
                f"--port and --grpc-port are both {settings.port}: give them different ports"
            )
        ports.append(
            _Port(
                settings.grpc_port,
                "--grpc-port",
                "THREADLINE_GRPC_PORT",
                "OTLP/gRPC",
                ", or --grpc-port 0 for no gRPC receiver",
            )
        )
    held: list[socket.socket] = []
    try:
        for port in ports:
            held += _bind(settings.host, port)
    except PortUnavailable:
        for sock in held:
            sock.close()
        raise
    return held


def _bind(host: str, port: _Port) -> list[socket.socket]:
    try:
        addresses = socket.getaddrinfo(
            host, port.number, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise PortUnavailable(
            f"cannot listen on {host!r}: {exc.strerror}; choose the address with --host"
        ) from None
    bound: list[socket.socket] = []
    for family, kind, proto, _, address in dict.fromkeys(addresses):
        sock = socket.socket(family, kind, proto)
        bound.append(sock)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            for opened in bound:
                opened.close()
            raise PortUnavailable(_explain(host, port, exc)) from None
    return bound


def _explain(host: str, port: _Port, exc: OSError) -> str:
    where = f"{host}:{port.number} for {port.serves}"
    if exc.errno == errno.EADDRINUSE:
        why = "the port is already in use (another server is listening on it)"
    elif exc.errno == errno.EACCES:
        why = "not permitted (ports below 1024 need privileges)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine; choose it with --host"
    else:
        why = exc.strerror or str(exc)
    change = f"Choose another with {port.flag} (or {port.env}){port.hint}"
    return f"cannot listen on {where}: {why}. {change}."
