"""WeChat server-push XML, parsed safely, and the JSON shapes of the APIs we call.

XML goes through lxml (libxml2) configured for untrusted input: entities are never
expanded or fetched, no DTD is loaded, nothing is read from the network, libxml2's
size limits stay on, and a document that declares a DTD is refused outright (WeChat
never sends one), so entity-expansion bombs and XXE cannot run. The body size is capped
by the channel before parsing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from lxml import etree
from pydantic import BaseModel

from chatbridge.errors import PayloadError

_local = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's parser: lxml parsers must not be shared between threads."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
    return parser


def parse_xml(body: bytes) -> dict[str, Any]:
    """The children of a ``<xml>`` document as a dict (nested elements as dicts)."""
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise PayloadError(f"not a WeChat XML document: {type(exc).__name__}: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise PayloadError("WeChat XML must not declare a DTD")
    if (tag := str(root.tag)) != "xml":
        raise PayloadError(f"WeChat XML root must be <xml>, not <{tag}>")
    return _children(root)


def _children(element: etree._Element) -> dict[str, Any]:
    return {
        str(child.tag): _children(child) if len(child) else (child.text or "").strip()
        for child in element
    }


def render_xml(fields: Mapping[str, str | int]) -> bytes:
    """A flat ``<xml>`` document, the shape of passive replies."""
    root = etree.Element("xml")
    for name, value in fields.items():
        etree.SubElement(root, name).text = str(value)
    return etree.tostring(root, encoding="unicode").encode()


class WXAccessToken(BaseModel):
    access_token: str
    expires_in: int


class WXUpload(BaseModel):
    media_id: str
    type: str | None = None
