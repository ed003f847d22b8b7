"""Form bodies: python-multipart with every dimension capped; anything malformed or over
a cap is a PayloadError."""

import pytest

from chatbridge import PayloadError
from chatbridge.plugin.formdata import FormLimits, Part, parse_form, read_form

pytestmark = pytest.mark.anyio
MULTIPART = "multipart/form-data; boundary=xyz"


def part(name: str, data: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (
        f'--xyz\r\nContent-Disposition: form-data; name="{name}"\r\n{head}\r\n'.encode()
        + data
        + b"\r\n"
    )


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--xyz--\r\n"


async def test_fields_and_files_keep_their_bytes() -> None:
    binary = bytes(range(256)) * 4 + b"\r\n--xy\r\n"
    body = form(
        part("a", b"hello"),
        part("a", b"last wins"),
        part('f"; filename="x.bin', binary, "Content-Type: application/octet-stream"),
    )
    fields = parse_form('multipart/form-data; boundary="xyz"', body)
    assert fields["a"] == Part(b"last wins")
    assert fields["f"] == Part(binary, "application/octet-stream", "x.bin")
    assert await read_form(MULTIPART, body * 1) == fields
    big = form(part("big", b"x" * 100_000))
    assert (await read_form(MULTIPART, big))["big"].data == b"x" * 100_000
    assert parse_form("application/x-www-form-urlencoded", b"a=1&b=%C3%A9")["b"].text == "é"


@pytest.mark.parametrize(
    ("content_type", "body", "limits", "match"),
    [
        (
            MULTIPART,
            form(*(part(f"f{i}", b"x") for i in range(11))),
            FormLimits(fields=10),
            "fields",
        ),
        (MULTIPART, form(part("f", b"x" * 101)), FormLimits(part_bytes=100), "over 100 bytes"),
        (MULTIPART, form(part("f", b"x", *[f"X-{i}: y" for i in range(8)])), None, "header count"),
        (MULTIPART, form(part("f", b"x", "X-A: " + "y" * 5000)), None, "header size"),
        (MULTIPART, form(part("f", b"x" * 200)), FormLimits(total_bytes=100), "over 100 bytes"),
        (MULTIPART, form(part("f", b"x"))[:-9], None, "closing boundary"),
        (MULTIPART, b"garbage with no boundary at all", None, "malformed multipart"),
        ("multipart/form-data", form(part("f", b"x")), None, "no boundary"),
        ("multipart/form-data; boundary=" + "b" * 300, b"--", None, "Boundary length"),
        (MULTIPART, form(part("f", b"x")).replace(b'"f"', b'"\xff"'), None, "UTF-8"),
        ("application/json", b"{}", None, "expected a form"),
        (
            "application/x-www-form-urlencoded",
            b"a=" + b"x" * 101,
            FormLimits(part_bytes=100),
            "over",
        ),
        ("application/x-www-form-urlencoded", b"a=1&" * 11, FormLimits(fields=10), "malformed"),
        ("application/x-www-form-urlencoded", b"a=\xff", None, "malformed"),
    ],
)
def test_malformed_and_over_limit_forms_are_payload_errors(
    content_type: str, body: bytes, limits: FormLimits | None, match: str
) -> None:
    with pytest.raises(PayloadError, match=match):
        parse_form(content_type, body, limits=limits)
