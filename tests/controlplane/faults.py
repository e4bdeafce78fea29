"""``FaultProxy``: an HTTPS proxy in front of the real kube-apiserver that answers chosen
requests itself with faults the real server cannot be made to produce on demand (a 5xx,
a 429 with Retry-After, a slow answer, a dropped connection, a malformed body), and
passes every other request through. It records every request it saw.

    with FaultProxy(plane) as proxy:
        proxy.fail(method="PATCH", path=r"/deployments/", status=503, times=2)
        run the code under test with KUBECONFIG=proxy.kubeconfig(tmp_path / "kubeconfig")
        proxy.requests(method="PATCH")    # [(method, path, status, fault), ...]

A fault can last a time instead of a number of requests (`seconds`), starting at the
first request it matches or at the first request matching `starting_at` (a burst of
503s once the first PATCH arrives); `rewrite` forwards the request and replaces the
real answer's body (a truncated LIST, an object without metadata); `refuse` takes the
proxy off the network for a while (connections refused, open ones cut), as a
restarting apiserver is.

It serves TLS with a certificate of the cluster's CA and talks to the apiserver as the
cluster admin, so a client needs nothing but the kubeconfig it writes. With
`as_admin=False` it presents no certificate upstream, and the apiserver authenticates the
bearer token the client sent (a client certificate cannot be passed through a proxy).
"""

import asyncio
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass, field

import aiohttp
import aiohttp.web

from . import pki
from .harness import free_port, kubeconfig_text

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
ARRIVED = aiohttp.web.RequestKey("arrived", float)  # when the proxy took the request


@dataclass
class Fault:
    method: str | None
    path: re.Pattern
    status: int = 503
    body: bytes = b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected","code":503}'
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    passthrough: bool = False  # only delay, then forward
    times: int | None = None  # None: every matching request
    seconds: float | None = None  # active this long from its start (None: no end)
    starting_at: tuple | None = None  # (method or None, path regex): dormant until such a request
    rewrite: object = None  # body -> body: forward, then answer with this instead of the real body
    refuse: float | None = None  # take the proxy off the network this long (after forwarding if `forward`)
    forward: bool = False
    started: float | None = None

    def matches(self, method, path):
        if self.times == 0 or (self.starting_at and self.started is None):
            return False
        if self.seconds is not None and self.started is not None and time.monotonic() > self.started + self.seconds:
            return False
        return bool((self.method is None or self.method == method) and self.path.search(path))

    def trigger(self, method, path):
        """Start the fault's time if `method path` starts it."""
        if self.started is not None:
            return
        if self.starting_at is None:
            if self.seconds is not None and self.matches(method, path):
                self.started = time.monotonic()
            return
        want, pattern = self.starting_at
        if (want is None or want.upper() == method) and re.search(pattern, path):
            self.started = time.monotonic()


@dataclass
class Seen:
    method: str
    path: str
    query: str
    status: int | None
    fault: str | None
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic())


class FaultProxy:
    def __init__(self, plane, as_admin=True):
        self.plane = plane
        self.as_admin = as_admin
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.faults = []
        self.seen = []
        self.lock = threading.Lock()
        self._loop = None
        self._thread = None
        self._off_until = 0.0  # time.monotonic() until which the proxy is off the network

    # -- configuring ----------------------------------------------------------------------------

    def fail(self, path=".", method=None, status=503, times=None, retry_after=None, body=None,
             content_type="application/json", delay=0.0, drop=False, passthrough=False, seconds=None,
             starting_at=None, rewrite=None):
        """Answer matching requests (path: regex on the URL path) with this fault, `times` times
        or for `seconds` (from the first match, or from the first request matching
        `starting_at`, a (method, path regex)). `rewrite`: forward, then answer with
        rewrite(real body) and `content_type` (None: the real one) instead."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        fault = Fault(method and method.upper(), re.compile(path), status, headers=headers, delay=delay, drop=drop,
                      passthrough=passthrough, times=times, content_type=content_type, seconds=seconds,
                      starting_at=starting_at, rewrite=rewrite)
        if body is not None:
            fault.body = body if isinstance(body, bytes) else body.encode()
        with self.lock:
            self.faults.append(fault)
        return fault

    def refuse(self, seconds, path=".", method=None, forward=False):
        """At the first request matching `method` and `path`, go off the network for `seconds`:
        the listening socket closes (new connections are refused) and every open connection is
        cut, that request's too, without an answer (`forward`: after passing it on, as a
        server that applied a write and died before answering)."""
        fault = Fault(method and method.upper(), re.compile(path), times=1, refuse=seconds, forward=forward)
        with self.lock:
            self.faults.append(fault)
        return fault

    def slow(self, path=".", method=None, delay=1.0, times=None):
        """Forward matching requests, but only after `delay` seconds."""
        return self.fail(path, method, delay=delay, passthrough=True, times=times)

    def clear(self):
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def requests(self, method=None, path=None):
        with self.lock:
            return [s for s in self.seen if (method is None or s.method == method)
                    and (path is None or re.search(path, s.path))]

    def kubeconfig(self, path):
        def read(name):
            with open(os.path.join(self.plane.pki, name), "rb") as f:
                return f.read()

        return pki.write_private(os.fspath(path), kubeconfig_text(self.url, read("ca.crt"), "kubernetes-admin",
                                                                  read("admin.crt"), read("admin.key")))

    # -- serving --------------------------------------------------------------------------------

    def _take(self, method, path):
        with self.lock:
            for fault in self.faults:
                fault.trigger(method, path)
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _record(self, request, status, fault):
        with self.lock:
            self.seen.append(Seen(request.method, request.path, request.query_string, status, fault,
                                  request.get(ARRIVED, time.monotonic())))

    async def _handle(self, request):
        request[ARRIVED] = time.monotonic()
        if time.monotonic() < self._off_until:  # a connection opened before the outage
            self._record(request, None, "refused")
            request.transport.abort()
            raise aiohttp.web.HTTPInternalServerError()  # never sent
        fault = self._take(request.method, request.path)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault and fault.refuse is not None:
            if fault.forward:
                await self._forward(request, None)
            self._record(request, None, "refuse")
            self._off_until = time.monotonic() + fault.refuse
            await self._go_off(fault.refuse)
            raise aiohttp.web.HTTPInternalServerError()  # never sent: the connection is gone
        if fault and fault.drop:
            self._record(request, None, "drop")
            request.transport.close()
            raise aiohttp.web.HTTPInternalServerError()  # never sent: the connection is gone
        if fault and not fault.passthrough and not fault.rewrite:
            self._record(request, fault.status, "error")
            return aiohttp.web.Response(status=fault.status, body=fault.body, headers=fault.headers,
                                        content_type=fault.content_type)
        return await self._forward(request, fault)

    async def _forward(self, request, fault):
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.request(request.method, self.plane.url + request.path_qs, data=body or None,
                                         headers=headers, allow_redirects=False,
                                         skip_auto_headers={"Content-Type"}) as upstream:  # send only what came
            if request.query.get("watch") in ("true", "1"):
                response = aiohttp.web.StreamResponse(status=upstream.status)
                response.content_type = upstream.content_type
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                self._record(request, upstream.status, "slow" if fault else None)
                return response
            payload = await upstream.read()
            headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            if fault and fault.rewrite:
                payload = fault.rewrite(payload)
                payload = payload.encode() if isinstance(payload, str) else payload
                if fault.content_type is not None:
                    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                    headers["Content-Type"] = fault.content_type
                self._record(request, upstream.status, "rewrite")
            else:
                self._record(request, upstream.status, "slow" if fault else None)
            return aiohttp.web.Response(status=upstream.status, body=payload, headers=headers)

    async def _go_off(self, seconds):
        """Stop listening, cut every open connection, listen again after `seconds`."""
        await self._site.stop()
        for transport in list(self._server._connections.values()):
            transport.abort()

        async def back():
            await asyncio.sleep(seconds)
            self._site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._serving)
            await self._site.start()

        self._loop.create_task(back())

    def _contexts(self):
        cert, key = self.plane.ca.issue("fault-proxy", server_ips=["127.0.0.1"], server_names=["localhost"])
        directory = os.path.join(self.plane.workdir, f"proxy-{self.port}")
        os.makedirs(directory, exist_ok=True)
        pki.write_private(os.path.join(directory, "tls.crt"), cert)
        pki.write_private(os.path.join(directory, "tls.key"), key)
        serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        serving.load_cert_chain(os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key"))
        if self.as_admin:
            return serving, self.plane._ssl()
        return serving, ssl.create_default_context(cafile=os.path.join(self.plane.pki, "ca.crt"))

    async def _astart(self, ready):
        serving, upstream = self._contexts()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=upstream),
                                              timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                                              auto_decompress=False)
        self._server = aiohttp.web.Server(self._handle, access_log=None)
        self._runner = aiohttp.web.ServerRunner(self._server)
        await self._runner.setup()
        self._serving = serving
        self._site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=serving)
        await self._site.start()
        ready.set()

    async def _astop(self):
        await self._runner.cleanup()
        await self._session.close()

    def start(self):
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._astart(ready))
            self._loop.run_forever()
            self._loop.run_until_complete(self._astop())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self):
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(20)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
