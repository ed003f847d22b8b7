"""User tags ("User management > User tag management"): WeChat's one way to classify
followers, and what conditional menus match on.

An account has at most 100 tags, named in at most 30 bytes, unique; tags 0, 1 and 2 are
WeChat's own. A follower has at most 20 tags; batches tag or untag at most 50 OpenIDs.
Sources: docs/wechat.md, "User tags".
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.errors import ProviderError
from chatbridge.wechat.api import Api, read, refuse, utf8_length

MAX_TAGS = 100
NAME_BYTES = 30
RESERVED = frozenset({0, 1, 2})
BATCH = 50
PER_USER = 20
#: The errcode of a tag name taken (or not valid).
NAME_TAKEN = 45157


class Tag(BaseModel):
    """A tag and how many followers have it (``count``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    count: int = 0


class TagPage(BaseModel):
    """One page of a tag's followers; ask for the next with ``next_openid`` (None:
    this was the last page)."""

    openids: list[str]
    next_openid: str | None = None


class _Created(BaseModel):
    tag: Tag


class _Tags(BaseModel):
    tags: list[Tag]


class _UserTags(BaseModel):
    tagid_list: list[int] = Field(default_factory=list)


class _OpenIds(BaseModel):
    openid: list[str] = Field(default_factory=list)


class _Members(BaseModel):
    count: int = 0
    data: _OpenIds | None = None
    next_openid: str | None = None


def _name(name: str) -> str:
    if not name:
        raise refuse("a tag name is not empty", NAME_TAKEN)
    if utf8_length(name) > NAME_BYTES:
        raise refuse(
            f"a tag name is 1 to {NAME_BYTES} bytes of UTF-8, not {utf8_length(name)}", 45158
        )
    return name


def _batch(openids: Sequence[str]) -> list[str]:
    if isinstance(openids, str) or not 1 <= len(openids) <= BATCH:
        raise refuse(f"tag or untag 1 to {BATCH} OpenIDs at a time", 40032)
    return list(openids)


def _mutable(tag_id: int) -> int:
    if tag_id in RESERVED:
        raise refuse(f"tag {tag_id} is reserved by WeChat", 45058)
    return tag_id


class Tags:
    """The tag API (``channel.tags``)."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def get_all(self) -> list[Tag]:
        """Every tag of the account, WeChat's own included."""
        return read(_Tags, await self._api("GET", "/cgi-bin/tags/get"), "tag list").tags

    async def create(self, name: str) -> Tag:
        body = {"tag": {"name": _name(name)}}
        return read(_Created, await self._api("POST", "/cgi-bin/tags/create", json=body), "tag").tag

    async def rename(self, tag_id: int, name: str) -> None:
        body = {"tag": {"id": _mutable(tag_id), "name": _name(name)}}
        await self._api("POST", "/cgi-bin/tags/update", json=body)

    async def delete(self, tag_id: int) -> None:
        """Delete a tag (WeChat refuses one with over 100,000 followers: untag first)."""
        await self._api("POST", "/cgi-bin/tags/delete", json={"tag": {"id": _mutable(tag_id)}})

    async def tag(self, tag_id: int, openids: Sequence[str]) -> None:
        """Put tag ``tag_id`` on up to 50 followers."""
        body = {"openid_list": _batch(openids), "tagid": tag_id}
        await self._api("POST", "/cgi-bin/tags/members/batchtagging", json=body)

    async def untag(self, tag_id: int, openids: Sequence[str]) -> None:
        """Take tag ``tag_id`` off up to 50 followers."""
        body = {"openid_list": _batch(openids), "tagid": tag_id}
        await self._api("POST", "/cgi-bin/tags/members/batchuntagging", json=body)

    async def of_user(self, openid: str) -> list[int]:
        """The ids of the tags ``openid`` has."""
        body = await self._api("POST", "/cgi-bin/tags/getidlist", json={"openid": openid})
        return read(_UserTags, body, "user tags").tagid_list

    async def members(self, tag_id: int, next_openid: str | None = None) -> TagPage:
        """One page of the followers with tag ``tag_id``, after ``next_openid``."""
        body: dict[str, object] = {"tagid": tag_id, "next_openid": next_openid or ""}
        page = read(
            _Members, await self._api("POST", "/cgi-bin/user/tag/get", json=body), "tag members"
        )
        openids = page.data.openid if page.data else []
        return TagPage(openids=openids, next_openid=(page.next_openid or None) if openids else None)

    async def all_members(self, tag_id: int) -> AsyncIterator[str]:
        """Every follower with tag ``tag_id``, page after page."""
        next_openid: str | None = None
        while True:
            page = await self.members(tag_id, next_openid)
            for openid in page.openids:
                yield openid
            if page.next_openid is None:
                return
            next_openid = page.next_openid


class TagMirror:
    """Mirrors history customer tags onto WeChat user tags (``WeChatChannel.tag_mirror``):
    ``names`` maps each mirrored history tag to its WeChat tag, made when missing. Only
    those WeChat tags are put on or taken off a follower; others are left alone."""

    #: How long the account's tag ids are trusted (a tag may be renamed in the console).
    ids_for = 60.0

    def __init__(self, api: Tags, channel: str, names: Mapping[str, str]) -> None:
        if len(set(names.values())) != len(names):
            raise ValueError("two history tags mirror onto one WeChat tag")
        self._api = api
        self._names = {tag: _name(name) for tag, name in names.items()}
        self._ids: dict[str, int] = {}
        self._read_at: float | None = None
        self.channel = channel
        self.tags = frozenset(names)

    async def mirror(self, address: str, tags: frozenset[str]) -> None:
        wanted = {self._names[tag] for tag in tags}
        try:
            held = set(await self._api.of_user(address))
            ids = await self._account_ids()
            for name in set(self._names.values()) - wanted:  # off first: 20 tags at most
                if ids.get(name) in held:
                    await self._api.untag(ids[name], [address])
            for name in sorted(wanted):
                tag_id = ids.get(name)
                if tag_id is None:
                    tag_id = await self._create(name)
                if tag_id not in held:
                    await self._api.tag(tag_id, [address])
        except Exception:
            self._read_at = None  # a tag renamed, deleted or made elsewhere: read them again
            raise

    async def _account_ids(self) -> dict[str, int]:
        now = time.monotonic()
        if self._read_at is None or now - self._read_at > self.ids_for:
            self._ids = {tag.name: tag.id for tag in await self._api.get_all()}
            self._read_at = now
        return self._ids

    async def _create(self, name: str) -> int:
        """Make WeChat tag ``name``; if another process just made it (45157), its id."""
        try:
            self._ids[name] = (await self._api.create(name)).id
        except ProviderError as exc:
            if exc.code != NAME_TAKEN:
                raise
            self._read_at = None
            if name not in await self._account_ids():
                raise
        return self._ids[name]
