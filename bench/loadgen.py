"""A small closed-loop HTTP/1.1 load generator for bench/scale.py: no dependencies beyond the standard library.

Each connection is one thread holding one keep-alive socket and a cookie jar, sending its next request as soon as
the last answer is read (closed loop). Connections are spread over a few forked processes so the generator's own
Python (one GIL per process) is not the bottleneck. Requests are written and answers parsed by hand (Content-Length
or chunked bodies), which costs the client far less per request than http.client.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe

Jar = dict[str, str]


@dataclass(frozen=True)
class Req:
    """One request and the status that counts as success."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    expect: int = 200


@dataclass
class Answer:
    """A response: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        """The first value of a header, or ""."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""


class _Stale(Exception):
    """The server had closed the idle keep-alive connection before our request: safe to send again."""


class Client:
    """One keep-alive connection to host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.buf = bytearray()

    def close(self) -> None:
        """Close the socket (the next request reconnects)."""
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, bytearray()

    def request(self, req: Req, jar: Jar) -> Answer:
        """Send req with the jar's cookies; Set-Cookie answers update the jar."""
        data = self._encode(req, jar)
        for retry in (True, False):
            if self.sock is None:
                self.sock = socket.create_connection((self.host, self.port), timeout=60)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.sock.sendall(data)
                answer, close = self._read()
            except (_Stale, BrokenPipeError, ConnectionResetError):
                self.close()
                if retry:
                    continue
                raise
            for cookie in answer.headers.get("set-cookie", []):
                name, _, rest = cookie.partition("=")
                value = rest.split(";", 1)[0]
                if value and "max-age=0" not in cookie.lower():
                    jar[name.strip()] = value
                else:
                    jar.pop(name.strip(), None)
            if close:
                self.close()
            return answer
        raise AssertionError("unreachable")

    def _encode(self, req: Req, jar: Jar) -> bytes:
        lines = [f"{req.method} {req.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "User-Agent: kaptrain-bench"]
        if jar:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in jar.items()))
        lines += [f"{k}: {v}" for k, v in req.headers]
        if req.method != "GET":
            if req.body:
                lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {len(req.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + req.body

    def _recv(self) -> bytes:
        assert self.sock is not None
        return self.sock.recv(262144)

    def _read(self) -> tuple[Answer, bool]:
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            chunk = self._recv()
            if not chunk:
                if not buf:
                    raise _Stale
                raise ConnectionError("connection closed in the middle of a response")
            buf += chunk
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, list[str]] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        close = "close" in ",".join(headers.get("connection", [])).lower()
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"][0]))
        elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            body = self._chunked()
        else:  # no length: the body runs to the end of the connection
            while chunk := self._recv():
                buf += chunk
            body, close = bytes(buf), True
            buf.clear()
        return Answer(status, headers, body), close

    def _exactly(self, n: int) -> bytes:
        buf = self.buf
        while len(buf) < n:
            chunk = self._recv()
            if not chunk:
                raise ConnectionError("connection closed in the middle of a body")
            buf += chunk
        body = bytes(buf[:n])
        del buf[:n]
        return body

    def _line(self) -> bytes:
        buf = self.buf
        while (end := buf.find(b"\r\n")) < 0:
            chunk = self._recv()
            if not chunk:
                raise ConnectionError("connection closed in a chunked body")
            buf += chunk
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    def _chunked(self) -> bytes:
        parts = []
        while size := int(self._line().split(b";", 1)[0], 16):
            parts.append(self._exactly(size))
            self._exactly(2)
        while self._line():  # trailers, then the blank line
            pass
        return b"".join(parts)


@dataclass
class ConnSpec:
    """What one connection sends: its requests in turn (each with the jar it carries)."""

    requests: list[tuple[Req, Jar]]


@dataclass
class PhaseResult:
    """What one measured phase did."""

    connections: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, of the requests counted
    errors: int = 0
    first_error: str = ""
    body_bytes: int = 0

    @property
    def completed(self) -> int:
        """Requests counted."""
        return len(self.latencies)

    @property
    def rps(self) -> float:
        """Requests a second."""
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency at the p-th percentile (nearest rank), in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    @property
    def mean_body(self) -> float:
        """Mean body size of the answers counted, in bytes."""
        return self.body_bytes / self.completed if self.completed else 0.0


def _connection_loop(
    host: str, port: int, spec: ConnSpec, start: float, count_from: float, stop: float | None, out: list[tuple]
) -> None:
    client = Client(host, port)
    time.sleep(max(0.0, start - time.monotonic()))
    i = 0
    n = len(spec.requests)
    while True:
        if stop is None and i >= n:
            break
        req, jar = spec.requests[i % n]
        i += 1
        began = time.monotonic()
        if stop is not None and began >= stop:
            break
        try:
            answer = client.request(req, jar)
            ok, size, error = answer.status == req.expect, len(answer.body), ""
            if not ok:
                error = f"{req.method} {req.path}: {answer.status} (expected {req.expect})"
        except OSError as exc:
            client.close()
            ok, size, error = False, 0, f"{req.method} {req.path}: {type(exc).__name__}: {exc}"
        ended = time.monotonic()
        if ended >= count_from and (stop is None or ended <= stop):
            out.append((ended - began, ok, size, error))
    client.close()


def _process_main(
    host: str, port: int, specs: list[ConnSpec], start: float, count_from: float, stop: float | None, pipe: Pipe
) -> None:
    results: list[list[tuple]] = [[] for _ in specs]
    threads = [
        threading.Thread(target=_connection_loop, args=(host, port, spec, start, count_from, stop, out))
        for spec, out in zip(specs, results, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipe.send([r for rows in results for r in rows])
    pipe.send(time.monotonic())
    pipe.close()


def run_phase(
    host: str,
    port: int,
    specs: Sequence[ConnSpec],
    *,
    duration: float | None,
    warmup: float = 0.0,
    processes: int = 2,
) -> PhaseResult:
    """Run the connections at once: for `duration` seconds after `warmup` (not counted), or, with duration None,
    until every connection has sent each of its requests once (the elapsed time is then the measure)."""
    context = multiprocessing.get_context("fork")
    start = time.monotonic() + 0.5  # every thread is ready to go by then
    count_from = start + warmup
    stop = count_from + duration if duration is not None else None
    groups = [list(specs[i::processes]) for i in range(min(processes, len(specs)))]
    pipes, children = [], []
    for group in groups:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_process_main, args=(host, port, group, start, count_from, stop, sender))
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    rows: list[tuple] = []
    ended = count_from
    for receiver in pipes:
        rows += receiver.recv()
        ended = max(ended, receiver.recv())
    for child in children:
        child.join()
    seconds = duration if duration is not None else ended - count_from
    result = PhaseResult(len(specs), seconds)
    for latency, ok, size, error in rows:
        if ok:
            result.latencies.append(latency)
            result.body_bytes += size
        else:
            result.errors += 1
            result.first_error = result.first_error or error
    return result


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")
