"""The WhatsApp business profile of a phone number (``/{phone-number-id}/
whatsapp_business_profile``): its wire shape and the limits Meta sets on an update
(sources in docs/whatsapp.md, "Business profile")."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.errors import MessageInvalidError

#: The fields ``GET`` asks for (Meta's "Get your business profile" example).
FIELDS = ("about", "address", "description", "email", "profile_picture_url", "websites", "vertical")
ABOUT_MAX = 139
ADDRESS_MAX = 256
DESCRIPTION_MAX = 512
EMAIL_MAX = 128
WEBSITES_MAX = 2
WEBSITE_MAX = 256
#: ``vertical`` values (pywa's ``Industry``, which follows Meta's reference).
VERTICALS = frozenset(
    {
        "UNDEFINED",
        "OTHER",
        "AUTO",
        "BEAUTY",
        "APPAREL",
        "EDU",
        "ENTERTAIN",
        "EVENT_PLAN",
        "FINANCE",
        "GROCERY",
        "GOVT",
        "HOTEL",
        "HEALTH",
        "NONPROFIT",
        "PROF_SERVICES",
        "RETAIL",
        "TRAVEL",
        "RESTAURANT",
        "NOT_A_BIZ",
    }
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class BusinessProfile(BaseModel):
    """What WhatsApp users see when they open the business's profile. In an update,
    fields left None are not changed; ``profile_picture_handle`` is a handle from
    Meta's Resumable Upload API (reads give ``profile_picture_url`` instead)."""

    model_config = ConfigDict(extra="allow")

    about: str | None = None
    address: str | None = None
    description: str | None = None
    email: str | None = None
    vertical: str | None = None
    websites: list[str] | None = None
    profile_picture_url: str | None = None
    profile_picture_handle: str | None = Field(default=None, repr=False)


class WAProfileList(BaseModel):
    """``GET /{phone-number-id}/whatsapp_business_profile`` success body."""

    data: list[BusinessProfile] = Field(min_length=1)


def update_body(profile: BusinessProfile) -> dict[str, Any]:
    """The ``POST`` body for ``profile``'s set fields, checked against Meta's limits."""
    check(profile)
    body = profile.model_dump(exclude_none=True, exclude={"profile_picture_url"})
    return {"messaging_product": "whatsapp", **body}


def problems(profile: BusinessProfile) -> list[str]:
    """Every limit ``profile`` breaks (empty when Meta would take it)."""
    found: list[str] = []
    if profile.about is not None and not 1 <= len(profile.about) <= ABOUT_MAX:
        found.append(f"about must be 1 to {ABOUT_MAX} characters; got {len(profile.about)}")
    for name, maximum in (
        ("address", ADDRESS_MAX),
        ("description", DESCRIPTION_MAX),
        ("email", EMAIL_MAX),
    ):
        value = getattr(profile, name)
        if value is not None and len(value) > maximum:
            found.append(f"{name} allows at most {maximum} characters; got {len(value)}")
    if profile.email and not _EMAIL.fullmatch(profile.email):
        found.append("email must be an email address")
    if profile.vertical is not None and profile.vertical not in VERTICALS:
        found.append(f"vertical must be one of {', '.join(sorted(VERTICALS))}")
    websites = profile.websites or []
    if len(websites) > WEBSITES_MAX:
        found.append(f"at most {WEBSITES_MAX} websites; got {len(websites)}")
    for site in websites:
        if not site.lower().startswith(("http://", "https://")) or len(site) > WEBSITE_MAX:
            found.append(f"a website must start with http:// or https:// and fit {WEBSITE_MAX}")
    return found


def check(profile: BusinessProfile) -> None:
    """Raise MessageInvalidError if ``profile`` breaks one of Meta's limits."""
    if found := problems(profile):
        raise MessageInvalidError("WhatsApp would refuse the business profile: " + "; ".join(found))
