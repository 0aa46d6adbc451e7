"""Where webhooks may go (issue 12 item 5): special-purpose addresses, DNS rebinding, refusals.

The ranges below are written out from the IANA IPv4 and IPv6 Special-Purpose Address Registries
(plus multicast and the IPv6 space outside global unicast) independently of the service's table,
and checked at both ends and in the middle, so neither a gap in the table nor one Python
version's ``is_global`` can let one through.
"""

import asyncio
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.models import utcnow
from app.webhooks import targets
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.targets import REFUSED, TargetRefused, check_target, is_public_address
from tests.api.test_subjects_assessments import subject
from tests.api.test_webhooks import post_assessment
from tests.conftest import Tenant

IANA_IPV4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.0/29",
    "192.0.0.8/32",
    "192.0.0.9/32",
    "192.0.0.10/32",
    "192.0.0.170/31",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",
    "255.255.255.255/32",
]
IANA_IPV6 = [
    "::/128",
    "::1/128",
    "::/96",  # IPv4-compatible (deprecated)
    "::ffff:0:0/96",  # IPv4-mapped
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001::/32",  # Teredo
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:1::3/128",
    "2001:2::/48",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:30::/28",
    "2001:db8::/32",
    "2002::/16",  # 6to4
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
    "4000::/3",  # not global unicast at all
    "::ffff:8.8.8.8/128",  # a mapped public address is still not a target
    "2002:808:808::/48",  # 6to4 of 8.8.8.8
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",
    "100.128.0.0",
    "192.0.1.1",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.254",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2001:200::1",
]


def samples(network: str) -> list[str]:
    net = ipaddress.ip_network(network)
    middle = net.network_address + net.num_addresses // 2
    return [str(net.network_address), str(middle), str(net.broadcast_address)]


@pytest.mark.parametrize("network", IANA_IPV4 + IANA_IPV6)
def test_every_special_purpose_range_is_refused(network: str) -> None:
    for address in samples(network):
        assert not is_public_address(ipaddress.ip_address(address)), address


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_the_table_names_its_sources() -> None:
    for network, source in targets.SPECIAL_PURPOSE:
        ipaddress.ip_network(network)  # parses, host bits clear
        assert source.strip(), network
    listed = {n for n, _ in targets.SPECIAL_PURPOSE}
    for network in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b::/96", "2002::/16"):
        assert network in listed


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Fake DNS for ``targets.resolve``: name -> successive answers (the last one repeats)."""
    answers: dict[str, list[list[str]]] = {}

    async def resolve(host: str, port: int) -> list[Any]:
        if host not in answers:
            raise TargetRefused(REFUSED)
        queue = answers[host]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(a) for a in answer]

    monkeypatch.setattr(targets, "resolve", resolve)
    return answers


@pytest.mark.anyio
async def test_the_real_resolver_refuses_unknown_names_like_private_ones() -> None:
    refusals = []
    for url in (
        "http://no-such-host.invalid/x",
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://2130706433/x",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/x",
    ):
        with pytest.raises(TargetRefused) as info:
            await check_target(url, allow_private=False)
        refusals.append(str(info.value))
    assert refusals == [REFUSED] * 5
    assert await check_target("http://127.0.0.1:9/x", allow_private=True) == []


@pytest.mark.anyio
async def test_refusals_are_one_message_that_reveals_no_address(
    client: httpx.AsyncClient, tenant_a: Tenant, dns: dict[str, list[list[str]]]
) -> None:
    dns["internal.example.test"] = [["10.1.2.3"]]
    dns["mixed.example.test"] = [["93.184.215.14", "fd00::7"]]
    bodies = []
    for url in (
        "http://internal.example.test/x",
        "http://mixed.example.test/x",
        "http://nowhere.example.test/x",
        "http://192.0.0.192/x",
        "http://192.0.0.8/x",
        "http://100.64.0.1/x",
        "http://198.18.0.1/x",
        "http://127.0.0.1/x",
    ):
        r = await client.post(
            "/v1/webhooks",
            json={"url": url, "events": ["assessment.created"]},
            headers=tenant_a.headers,
        )
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["errors"][0]["loc"] == ["body", "url"]
        bodies.append((body["detail"], body["errors"][0]["msg"]))
        for secret in ("10.1.2.3", "fd00", "127.0.0.1", "resolve to a non-public"):
            assert secret not in r.text
    assert set(bodies) == {(REFUSED, REFUSED)}
    assert (await client.get("/v1/webhooks", headers=tenant_a.headers)).json()["items"] == []


async def _one_delivery(
    client: httpx.AsyncClient, tenant: Tenant, url: str
) -> tuple[str, dict[str, str]]:
    r = await client.post(
        "/v1/webhooks", json={"url": url, "events": ["assessment.created"]}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    await client.post("/v1/subjects", json=subject("emp-1"), headers=tenant.headers)
    await post_assessment(
        client, tenant, {"execution": 3}, (utcnow() - timedelta(days=1)).isoformat()
    )
    return str(r.json()["id"]), tenant.headers


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_request_goes_to_the_address_that_was_checked(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    settings: Settings,
    sessionmaker: Any,
    dns: dict[str, list[list[str]]],
    scheme: str,
) -> None:
    """DNS rebinding: public at the check, loopback right after; the request still goes to the
    public address, with the name in Host and as the TLS server name."""
    dns["rebind.example.test"] = [["93.184.215.14"], ["93.184.215.14"], ["127.0.0.1"]]
    hook, headers = await _one_delivery(client, tenant_a, f"{scheme}://rebind.example.test/hooks")
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    transport = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    dispatcher = Dispatcher(sessionmaker, settings, client=transport)
    try:
        assert await dispatcher.dispatch_once() == 1
    finally:
        await dispatcher.aclose()
    [request] = sent
    assert request.url.host == "93.184.215.14"
    assert request.url.path == "/hooks"
    assert request.headers["host"] == "rebind.example.test"
    if scheme == "https":
        assert request.extensions["sni_hostname"] == "rebind.example.test"
    # The next delivery checks again, finds loopback, and refuses without revealing it.
    await post_assessment(
        client, tenant_a, {"execution": 4}, (utcnow() - timedelta(hours=1)).isoformat()
    )
    dispatcher = Dispatcher(sessionmaker, settings, client=transport)
    try:
        assert await dispatcher.dispatch_once() == 1
    finally:
        await dispatcher.aclose()
    assert len(sent) == 1
    log = (await client.get(f"/v1/webhooks/{hook}/deliveries", headers=headers)).json()["items"]
    errors = sorted(str(d["last_error"]) for d in log)
    assert errors == ["None", f"refused target: {REFUSED}"]


class TlsReceiver:
    """An HTTPS server on 127.0.0.1 with a certificate for one name; records Host and SNI."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.cert, key = workdir / "cert.pem", workdir / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(key), "-out", str(self.cert), "-subj", f"/CN={name}",
                "-addext", f"subjectAltName=DNS:{name}",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.received: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        context.sni_callback = lambda _sock, server_name, _ctx: self.server_names.append(
            server_name
        )
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[TlsReceiver]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    receiver = TlsReceiver("hooks.example.test", tmp_path)
    yield receiver
    receiver.close()


@pytest.mark.anyio
async def test_a_pinned_tls_delivery_verifies_the_name_over_real_https(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    settings: Settings,
    sessionmaker: Any,
    dns: dict[str, list[list[str]]],
    tls_receiver: TlsReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over real TLS: the name resolves to the receiver for the check only (then nowhere); the
    receiver gets the request with its name as SNI and Host, and the certificate is verified
    against that name."""
    loopback = ipaddress.ip_address("127.0.0.1")
    public = targets.is_public_address
    monkeypatch.setattr(targets, "is_public_address", lambda a: a == loopback or public(a))
    dns["hooks.example.test"] = [["127.0.0.1"], ["127.0.0.1"], ["10.0.0.1"]]
    url = f"https://hooks.example.test:{tls_receiver.port}/hooks"
    hook, headers = await _one_delivery(client, tenant_a, url)
    verify = ssl.create_default_context(cafile=str(tls_receiver.cert))
    dispatcher = Dispatcher(
        sessionmaker, settings, client=httpx.AsyncClient(verify=verify, timeout=5)
    )
    try:
        assert await dispatcher.dispatch_once() == 1
    finally:
        await dispatcher.aclose()
    [delivery] = (await client.get(f"/v1/webhooks/{hook}/deliveries", headers=headers)).json()[
        "items"
    ]
    assert (delivery["status"], delivery["last_error"]) == ("delivered", None)
    [seen] = tls_receiver.received
    assert seen["Host"] == f"hooks.example.test:{tls_receiver.port}"
    assert tls_receiver.server_names == ["hooks.example.test"]
    # The name never reached the system resolver: nothing resolves it outside the fake.
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("hooks.example.test", 443)


@pytest.mark.anyio
async def test_a_refused_connection_moves_on_to_the_next_checked_address(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    settings: Settings,
    sessionmaker: Any,
    dns: dict[str, list[list[str]]],
) -> None:
    dns["two.example.test"] = [["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]]
    hook, headers = await _one_delivery(client, tenant_a, "https://two.example.test:8443/in")
    tried: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        tried.append(str(request.url))
        if request.url.host == "93.184.215.14":
            raise httpx.ConnectError("connection refused", request=request)
        assert request.headers["host"] == "two.example.test:8443"
        assert request.extensions["sni_hostname"] == "two.example.test"
        return httpx.Response(200)

    dispatcher = Dispatcher(
        sessionmaker, settings, client=httpx.AsyncClient(transport=httpx.MockTransport(answer))
    )
    try:
        assert await dispatcher.dispatch_once() == 1
    finally:
        await dispatcher.aclose()
    assert tried == [
        "https://93.184.215.14:8443/in",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/in",
    ]
    [delivery] = (await client.get(f"/v1/webhooks/{hook}/deliveries", headers=headers)).json()[
        "items"
    ]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)


@pytest.mark.anyio
async def test_a_resolver_that_hangs_is_a_refusal_not_a_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def hang(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", hang)
    monkeypatch.setattr(targets, "RESOLVE_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(TargetRefused, match="public internet addresses only"):
        await asyncio.wait_for(check_target("http://slow.example.test/", allow_private=False), 5)
