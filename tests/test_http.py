"""The HTTP engines against a real loopback server: sends work, and a request the
provider may have acted on is never retried."""

import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketStream

from chatbridge.errors import ConfigurationError, DeliveryUnknownError, ProviderUnavailableError
from chatbridge.http import Engine, RetryPolicy, make_client
from chatbridge.models import Media, MediaKind, Message
from chatbridge.server import config
from chatbridge.whatsapp import WhatsAppChannel
from chatbridge.whatsapp import kit as whatsapp_kit

pytestmark = pytest.mark.anyio

ACCEPTED = b'{"messaging_product":"whatsapp","messages":[{"id":"wamid.LOOP"}]}'
Handler = Callable[[SocketStream], Awaitable[None]]


async def read_request(stream: SocketStream, heads: list[bytes] | None = None) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    if heads is not None:
        heads.append(head)
    length = (
        next(
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        if b"content-length:" in head.lower()
        else 0
    )
    while len(body) < length:
        body += await stream.receive()
    return body


class Dropper:
    """A loopback handler that reads each request, counts it and hangs up unanswered
    (the provider may have acted on it)."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, stream: SocketStream) -> None:
        async with stream:
            await read_request(stream)
            self.requests += 1


@asynccontextmanager
async def loopback(handle: Handler) -> AsyncIterator[str]:
    """A one-off HTTP server on 127.0.0.1; yields its base URL."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 (anyio, not Django)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}"
        group.cancel_scope.cancel()


async def whatsapp(base: str, engine: Engine) -> tuple[WhatsAppChannel, Message]:
    settings = whatsapp_kit.CONFIG.model_copy(update={"base_url": base})
    retry = RetryPolicy(attempts=3, backoff=0)
    channel = WhatsAppChannel(settings, http_engine=engine, retry=retry)
    customer = channel.identity(whatsapp_kit.CUSTOMER)
    await channel.store.update_contact_state(customer, last_inbound_at=channel.clock.now())
    return channel, Message(contact=customer, text="hello")


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_send_over_loopback(engine: Engine) -> None:
    bodies: list[bytes] = []

    async def accept(stream: SocketStream) -> None:
        async with stream:
            bodies.append(await read_request(stream))
            head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            head += f"content-length: {len(ACCEPTED)}\r\nconnection: close\r\n\r\n"
            await stream.send(head.encode() + ACCEPTED)

    async with loopback(accept) as base:
        channel, message = await whatsapp(base, engine)
        async with channel:
            receipt = await channel.send(message)
    assert receipt.message_id == "wamid.LOOP"
    assert b'"body":"hello"' in bodies[0].replace(b" ", b"")


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_a_dropped_connection_is_not_retried(engine: Engine) -> None:
    drop = Dropper()
    async with loopback(drop) as base:
        channel, message = await whatsapp(base, engine)
        async with channel:
            with pytest.raises(ProviderUnavailableError) as raised:
                await channel.send(message)
    assert drop.requests == 1  # the provider may have sent it: a retry could duplicate it
    assert not isinstance(raised.value.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_a_refused_connection_is_retried_then_typed(engine: Engine) -> None:
    async with loopback(drop_nothing) as base:
        pass  # the port is closed again: connecting is refused
    channel, message = await whatsapp(base, engine)
    async with channel:
        with pytest.raises(ProviderUnavailableError, match="unreachable") as raised:
            await channel.send(message)
    assert isinstance(raised.value.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


async def drop_nothing(stream: SocketStream) -> None:
    await stream.aclose()


def test_unknown_engine_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown HTTP engine 'curl'"):
        make_client(engine="curl")  # type: ignore[arg-type]


async def test_config_file_chooses_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "chatbridge.toml"
    secrets = 'access_token = "t"\napp_secret = "s"\nverify_token = "v"'
    path.write_text(
        f'[http]\nengine = "aiohttp"\nmax_connections = 7\n\n'
        f'[channels.whatsapp]\nphone_number_id = "1"\n{secrets}\n'
    )
    deployment = config.load(path)
    channel = deployment.channels["whatsapp"]
    async with channel:
        assert type(channel.http._transport).__name__ == "AiohttpTransport"
        assert channel.http._transport._limits.max_connections == 7  # type: ignore[attr-defined]
    path.write_text(path.read_text().replace("= 7", '= "7"'))
    with pytest.raises(ConfigurationError, match=r"max_connections .* whole number"):
        config.load(path)


def keep_alive(answer: Callable[[list[bytes]], bytes], heads: list[bytes]) -> Handler:
    """A loopback handler answering each request of a keep-alive connection with
    ``answer(heads)``; records the request heads."""

    async def handle(stream: SocketStream) -> None:
        async with stream:
            while True:
                try:
                    await read_request(stream, heads)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                await stream.send(answer(heads))

    return handle


def answering(bodies: dict[bytes, bytes], heads: list[bytes]) -> Handler:
    """Answers each request with the body of the first path fragment it contains."""

    def answer(heads: list[bytes]) -> bytes:
        path = heads[-1].split(b" ")[1]
        body = next(answer for part, answer in bodies.items() if part in path)
        head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body

    return keep_alive(answer, heads)


def header_names(head: bytes) -> list[bytes]:
    return sorted(line.split(b":")[0].lower() for line in head.split(b"\r\n")[1:])


async def test_both_engines_put_the_same_request_on_the_wire() -> None:
    heads: dict[Engine, list[bytes]] = {"httpx": [], "aiohttp": []}
    answers = {b"/media": b'{"id":"m1"}', b"/messages": ACCEPTED}
    for engine, seen in heads.items():
        async with loopback(answering(answers, seen)) as base:
            channel, message = await whatsapp(base, engine)
            async with channel:
                upload = Media(kind=MediaKind.IMAGE, data=b"\x89PNG", mime_type="image/png")
                assert (await channel.upload_media(upload)).provider_id == "m1"
                assert (await channel.send(message)).message_id == "wamid.LOOP"
    for via_httpx, via_aiohttp in zip(heads["httpx"], heads["aiohttp"], strict=True):
        assert via_httpx.split(b"\r\n")[0] == via_aiohttp.split(b"\r\n")[0]
        assert header_names(via_httpx) == header_names(via_aiohttp)


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_max_connections_bounds_the_pool_and_keeps_it_alive(engine: Engine) -> None:
    connections = 0

    async def counting(stream: SocketStream) -> None:
        nonlocal connections
        connections += 1
        await answering({b"/": ACCEPTED}, [])(stream)

    async with (
        loopback(counting) as base,
        make_client(engine=engine, max_connections=3) as client,
        anyio.create_task_group() as group,
    ):
        for _ in range(30):
            group.start_soon(client.post, f"{base}/v21.0/1/messages")
    assert connections == 3


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        make_client(max_connections=0)


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_a_read_timeout_is_a_delivery_unknown_and_not_retried(engine: Engine) -> None:
    requests = 0

    async def silent(stream: SocketStream) -> None:
        nonlocal requests
        async with stream:
            await read_request(stream)
            requests += 1
            await anyio.sleep(5)

    async with loopback(silent) as base:
        client = make_client(engine=engine)
        client.timeout = httpx.Timeout(0.2)
        settings = whatsapp_kit.CONFIG.model_copy(update={"base_url": base})
        async with client, WhatsAppChannel(settings, http_client=client) as channel:
            customer = channel.identity(whatsapp_kit.CUSTOMER)
            await channel.store.update_contact_state(customer, last_inbound_at=channel.clock.now())
            with pytest.raises(DeliveryUnknownError) as raised:
                await channel.send(Message(contact=customer, text="hello"))
    assert requests == 1
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)


@pytest.fixture
def httpx_sends(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """The requests that went through httpx.AsyncClient.send (not the direct path)."""
    sends: list[httpx.Request] = []
    send = httpx.AsyncClient.send

    async def counted(client: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
        sends.append(request)
        return await send(client, request, **kw)

    monkeypatch.setattr(httpx.AsyncClient, "send", counted)
    return sends


async def test_the_aiohttp_engine_sends_directly_with_the_clients_defaults(
    httpx_sends: list[httpx.Request],
) -> None:
    heads: list[bytes] = []
    async with loopback(answering({b"/": ACCEPTED}, heads)) as base:
        channel, message = await whatsapp(base, "aiohttp")
        channel.http.headers["X-Default"] = "kept"
        async with channel:
            assert (await channel.send(message)).message_id == "wamid.LOOP"
            response = await channel.http.get(f"{base}/status")
    assert response.elapsed.total_seconds() > 0 and response.request.method == "GET"
    assert httpx_sends == []
    sent = heads[0].lower().split(b"\r\n")
    for header in (b"x-default: kept", b"user-agent: python-httpx/", b"accept: */*"):
        assert any(line.startswith(header) for line in sent), header
    assert any(line.startswith(b"authorization: bearer ") for line in sent)


async def test_the_direct_path_maps_failures_as_before(httpx_sends: list[httpx.Request]) -> None:
    async with loopback(drop_nothing) as base:
        pass  # a connection never made: retried, then unavailable
    channel, message = await whatsapp(base, "aiohttp")
    async with channel:
        with pytest.raises(ProviderUnavailableError, match="unreachable") as refused:
            await channel.send(message)
    assert isinstance(refused.value.__cause__, httpx.ConnectError)

    async def silent(stream: SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await anyio.sleep(5)

    async with loopback(silent) as base:
        channel, message = await whatsapp(base, "aiohttp")
        channel.http.timeout = httpx.Timeout(0.2)
        async with channel:
            with pytest.raises(DeliveryUnknownError) as unknown:
                await channel.send(message)
    assert isinstance(unknown.value.__cause__, httpx.ReadTimeout)
    assert httpx_sends == []


async def test_the_direct_path_keeps_cookies_and_redirects(
    httpx_sends: list[httpx.Request],
) -> None:
    heads: list[bytes] = []

    def answer(heads: list[bytes]) -> bytes:
        extra = "set-cookie: lb=7; Path=/\r\n" if len(heads) == 1 else ""
        extra += "location: /moved\r\n" if b"/old" in heads[-1] else ""
        status = "302 Found" if extra.endswith("/moved\r\n") else "200 OK"
        return f"HTTP/1.1 {status}\r\n{extra}content-length: 2\r\n\r\n{{}}".encode()

    async with loopback(keep_alive(answer, heads)) as base, make_client(engine="aiohttp") as client:
        await client.get(f"{base}/first")
        assert client.cookies["lb"] == "7"
        redirect = await client.get(f"{base}/old")
        assert redirect.status_code == 302 and redirect.next_request is not None
        assert str(redirect.next_request.url) == f"{base}/moved"
        assert httpx_sends == []
        hooked: list[str] = []

        async def hook(request: httpx.Request) -> None:
            hooked.append(request.url.path)

        client.event_hooks = {"request": [hook]}  # AsyncClient.send's own steps again
        assert (await client.get(f"{base}/old", follow_redirects=True)).status_code == 200
    assert hooked == ["/old", "/moved"] and len(httpx_sends) == 1
    assert b"cookie: lb=7" in heads[1].lower()


BUILDS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/a", {"headers": {"Authorization": "Bearer t"}, "json": {"a": "é", "n": [1, 2.5]}}),
    ("POST", "/a", {"headers": {"Authorization": "Bearer u"}, "json": {"a": "z"}}),
    ("post", ":81/a?q=1", {"headers": {"user-agent": "me", "Content-Type": "text/x"}, "json": [1]}),
    ("POST", "/a", {"content": b"a=1", "headers": {"Content-Type": "text/plain"}}),
    ("POST", "/a", {"content": b""}),
    ("POST", "/a", {}),
    ("GET", "/a", {"headers": {"accept": "x", "Accept": "y"}}),
    ("PUT", "/a", {"headers": {"Content-Length": "3", "Host": "h.example"}, "content": b"abc"}),
    ("POST", "/a", {"json": {"x": 1}, "params": {"p": "1"}}),  # httpx's own path
]


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
def test_requests_are_built_as_httpx_builds_them(engine: Engine) -> None:
    client = make_client(engine=engine)

    def same(method: str, url: str, **kwargs: Any) -> httpx.Request:
        ours = client.build_request(method, url, **kwargs)
        theirs = httpx.AsyncClient.build_request(client, method, url, **kwargs)
        assert (ours.method, ours.url, ours.headers.raw, ours.content, ours.extensions) == (
            theirs.method,
            theirs.url,
            theirs.headers.raw,
            theirs.content,
            theirs.extensions,
        )
        assert type(ours.stream) is type(theirs.stream)
        return ours

    for _ in range(2):  # built, then from the template
        for method, path, kwargs in BUILDS:
            same(method, f"http://x.example{path}", **kwargs)
    client.headers["X-Default"] = "1"  # the client's defaults changed: new templates
    assert same("POST", "http://x.example/a", json={}).headers["x-default"] == "1"
    client.base_url = httpx.URL("http://y.example/v1/")
    assert same("POST", "messages", json={}).url == "http://y.example/v1/messages"
    client.cookies.set("lb", "7")
    assert same("POST", "http://y.example/a", json={}).headers["cookie"] == "lb=7"
    client.cookies.clear()
    for wrong, error in ((1, TypeError), ("é", UnicodeEncodeError)):
        for build in (client.build_request, httpx.AsyncClient().build_request):
            with pytest.raises(error):
                build("POST", "http://y.example/a", headers={"Authorization": wrong}, json={})


async def test_a_direct_send_reads_the_answer_as_httpx_does(
    httpx_sends: list[httpx.Request],
) -> None:
    answers = {b"/plain": ACCEPTED, b"/gzip": gzip.compress(ACCEPTED)}

    async def answer(stream: SocketStream) -> None:
        async with stream:
            heads: list[bytes] = []
            while True:
                try:
                    await read_request(stream, heads)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                path = heads[-1].split(b" ")[1]
                body = answers[path]
                encoding = "content-encoding: gzip\r\n" if path == b"/gzip" else ""
                head = f"HTTP/1.1 200 OK\r\n{encoding}content-length: {len(body)}\r\n\r\n"
                await stream.send(head.encode() + body)

    async def nothing(request: httpx.Request) -> None:
        pass

    async with loopback(answer) as base, make_client(engine="aiohttp") as client:
        for path in ("/plain", "/gzip"):
            direct = await client.get(f"{base}{path}")
            client.event_hooks = {"request": [nothing]}  # through AsyncClient.send
            via_httpx = await client.get(f"{base}{path}")
            client.event_hooks = {}
            for response in (direct, via_httpx):
                assert response.content == ACCEPTED and response.json()["messages"]
                assert response.is_closed and response.is_stream_consumed
                assert response.num_bytes_downloaded == len(answers[path.encode()])
                assert response.elapsed.total_seconds() > 0
                again = httpx.Headers(response.headers.raw)  # what httpx makes of them
                assert response.headers.multi_items() == again.multi_items()
                assert response.headers.encoding == again.encoding
    assert len(httpx_sends) == 2


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_a_streamed_answer_comes_as_it_is_sent(engine: Engine) -> None:
    """A media download read in chunks must not wait for (or hold) the whole body."""
    release = anyio.Event()

    async def slow_body(stream: SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nfirst")
            await release.wait()
            await stream.send(b"end")

    async with (
        loopback(slow_body) as base,
        make_client(engine=engine) as client,
        client.stream("GET", f"{base}/media") as response,
    ):
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"first"  # before the rest was sent
        release.set()
        assert b"".join([chunk async for chunk in chunks]) == b"end"


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_a_body_from_an_async_iterator_goes_out_chunked(engine: Engine) -> None:
    heads: list[bytes] = []

    async def parts() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    answer = keep_alive(lambda heads: b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", heads)
    async with loopback(answer) as base, make_client(engine=engine) as client:
        response = await client.post(f"{base}/upload", content=parts())
    assert response.status_code == 200
    assert b"transfer-encoding: chunked" in heads[0].lower()


async def test_aiohttp_failures_name_no_url() -> None:
    """aiohttp's messages hold the URL, whose query may carry a secret (WeChat's
    access_token): the httpx error must not show it, nor chain aiohttp's."""

    async def garbage(stream: SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"NOT HTTP AT ALL\r\n\r\n")

    async with loopback(garbage) as base, make_client(engine="aiohttp") as client:
        with pytest.raises(httpx.TransportError) as failed:
            await client.get(f"{base}/cgi-bin/x?access_token=SECRET-TOKEN")
    assert "SECRET" not in str(failed.value) and failed.value.__cause__ is None


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_httpx_request_log_hides_secret_query_values(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="httpx")
    answer = keep_alive(lambda heads: b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", [])
    async with loopback(answer) as base, make_client(engine=engine) as client:
        await client.get(f"{base}/token?grant_type=client_credential&appid=wx1&secret=APP-SECRET")
        await client.post(f"{base}/send?access_token=TOKEN-1", json={})
    assert "APP-SECRET" not in caplog.text and "TOKEN-1" not in caplog.text
    assert "appid=wx1" in caplog.text and "secret=%2A%2A%2A" in caplog.text
