"""WeChat server-push XML, parsed safely, and the JSON shapes of the APIs we call.

XML goes through defusedxml: DTDs, entity declarations and external references are
refused, so entity-expansion bombs and XXE cannot run; the body size is capped by the
channel before parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import BaseModel, ConfigDict, Field

from chatbridge.errors import PayloadError


def parse_xml(body: bytes) -> dict[str, Any]:
    """The children of a ``<xml>`` document as a dict (nested elements as dicts)."""
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise PayloadError(f"not a WeChat XML document: {type(exc).__name__}: {exc}") from exc
    if root.tag != "xml":
        raise PayloadError(f"WeChat XML root must be <xml>, not <{root.tag}>")
    return _children(root)


def _children(element: Element) -> dict[str, Any]:
    return {
        child.tag: _children(child) if len(child) else (child.text or "").strip()
        for child in element
    }


def render_xml(fields: Mapping[str, str | int]) -> bytes:
    """A flat ``<xml>`` document, the shape of passive replies."""
    root = Element("xml")
    for name, value in fields.items():
        SubElement(root, name).text = str(value)
    return tostring(root, encoding="unicode").encode()


class WXPush(BaseModel):
    """One message or event pushed to the server URL (field names are WeChat's)."""

    model_config = ConfigDict(extra="allow")

    to_user: str = Field(alias="ToUserName")
    from_user: str = Field(alias="FromUserName")
    create_time: int = Field(alias="CreateTime")
    msg_type: str = Field(alias="MsgType")
    msg_id: str | None = Field(default=None, alias="MsgId")
    content: str | None = Field(default=None, alias="Content")
    pic_url: str | None = Field(default=None, alias="PicUrl")
    media_id: str | None = Field(default=None, alias="MediaId")
    format: str | None = Field(default=None, alias="Format")
    recognition: str | None = Field(default=None, alias="Recognition")
    thumb_media_id: str | None = Field(default=None, alias="ThumbMediaId")
    location_x: float | None = Field(default=None, alias="Location_X")
    location_y: float | None = Field(default=None, alias="Location_Y")
    label: str | None = Field(default=None, alias="Label")
    title: str | None = Field(default=None, alias="Title")
    description: str | None = Field(default=None, alias="Description")
    url: str | None = Field(default=None, alias="Url")
    event: str | None = Field(default=None, alias="Event")
    event_key: str | None = Field(default=None, alias="EventKey")
    latitude: float | None = Field(default=None, alias="Latitude")
    longitude: float | None = Field(default=None, alias="Longitude")
    template_msg_id: str | None = Field(default=None, alias="MsgID")
    status: str | None = Field(default=None, alias="Status")


class WXAccessToken(BaseModel):
    access_token: str
    expires_in: int


class WXUpload(BaseModel):
    media_id: str
    type: str | None = None
