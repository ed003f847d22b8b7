"""The WhatsApp Cloud API channel."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import NoReturn

import httpx

from chatbridge.channel import Channel
from chatbridge.errors import (
    ConfigurationError,
    MediaError,
    MessageInvalidError,
    ProviderError,
)
from chatbridge.models import Identity, Media, Message, Receipt
from chatbridge.plugin import graph
from chatbridge.policy import PolicyRules
from chatbridge.webhook import WebhookRequest, WebhookResult
from chatbridge.whatsapp import outbound, profile, templates
from chatbridge.whatsapp.errors import error_for
from chatbridge.whatsapp.inbound import parse_notification
from chatbridge.whatsapp.payloads import WAMediaInfo, WASendResult, WAUploadResult
from chatbridge.whatsapp.profile import BusinessProfile
from chatbridge.whatsapp.templates import (
    CreatedTemplate,
    MessageTemplate,
    TemplateComponent,
    TemplateDefinition,
    TemplatePage,
)

#: The template fields asked for when listing or reading templates.
TEMPLATE_FIELDS = (
    "id,name,language,status,category,components,parameter_format,quality_score,"
    "rejected_reason,previous_category,correct_category"
)


class WhatsAppConfig(graph.GraphConfig):
    """Credentials and endpoint of one WhatsApp business phone number;
    ``business_account_id`` (the WABA id) is needed only to manage templates."""

    phone_number_id: str
    api_version: str = "v21.0"
    business_account_id: str | None = None


class WhatsAppChannel(Channel):
    """WhatsApp through Meta's Cloud API.

    Policy: free-form messages only within 24 hours of the customer's last message;
    outside that window only approved templates.
    """

    name = "whatsapp"
    config_type = WhatsAppConfig
    config: WhatsAppConfig
    rules = PolicyRules(window=timedelta(hours=24))
    max_body_bytes = 3 * 1024 * 1024
    content_types = frozenset({"application/json"})

    def __repr__(self) -> str:
        return f"WhatsAppChannel(phone_number_id={self.config.phone_number_id!r})"

    # -- inbound ----------------------------------------------------------------------

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        return graph.receive(
            request,
            provider=self.name,
            verify_token=self.config.verify_token,
            app_secret=self.config.app_secret,
            parse=lambda body: parse_notification(body, self.inbound()),
        )

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        outbound.validate(message, self.lengths)

    async def _deliver(self, message: Message) -> Receipt:
        if message.media and not (message.media[0].provider_id or message.media[0].url):
            uploaded = await self.upload_media(message.media[0])
            message = message.model_copy(update={"media": [uploaded]})
        response = await self._post_json("messages", outbound.message_body(message))
        result = self._read(response, WASendResult, "send")
        return self._receipt(message.contact, result.messages[0].id, result.model_dump())

    async def mark_read(self, message_id: str) -> None:
        """Mark an inbound message as read (no policy applies: it is not a message)."""
        await self._post_json("messages", outbound.mark_read_body(message_id))

    async def typing(self, contact: Identity, message_id: str | None = None) -> None:
        """Show ``contact`` the typing indicator until the reply, or for 25 seconds.

        WhatsApp sends it with a mark-as-read of one of the customer's messages:
        ``message_id``, else their latest (the store keeps its id). Without either,
        MessageInvalidError."""
        self._check_identity(contact)
        message_id = message_id or (await self.store.contact_state(contact)).last_message_id
        if message_id is None:
            raise MessageInvalidError(
                f"a WhatsApp typing indicator needs one of {contact}'s message ids: "
                "pass message_id (the store knows no message of theirs)"
            )
        response = await self._post_json("messages", outbound.typing_body(message_id))
        self._read(response, templates.WASuccess, "typing indicator")

    # -- media ------------------------------------------------------------------------

    async def upload_media(self, media: Media) -> Media:
        if media.data is None or not media.mime_type:
            raise MessageInvalidError("uploading media needs data and a mime_type")
        kind = outbound.wire_media_type(media)
        self.lengths.upload(kind, media.data, outbound.MEDIA_MAX_BYTES[kind])
        request = self.http.build_request(
            "POST",
            self._url("media"),
            headers=self._auth(),
            data={"messaging_product": "whatsapp", "type": media.mime_type},
            files={"file": (media.filename or "upload", media.data, media.mime_type)},
        )
        response = await self._request(request)
        uploaded = self._read(response, WAUploadResult, "media upload")
        return media.model_copy(update={"provider_id": uploaded.id, "size": len(media.data)})

    async def download_media(self, media: Media) -> bytes:
        """Two steps: ``GET /{media-id}`` for a short-lived URL, then ``GET`` that URL with
        the same bearer token. The sha256 Meta reports is checked."""
        if not media.provider_id:
            raise MessageInvalidError("downloading WhatsApp media needs its provider_id")
        info_url = self._node(media.provider_id)
        response = await self._request(
            self.http.build_request("GET", info_url, headers=self._auth())
        )
        info = self._read(response, WAMediaInfo, "media lookup")
        content = await self._request(
            self.http.build_request("GET", info.url, headers=self._auth())
        )
        data = content.content
        expected = info.sha256 or media.sha256
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise MediaError(f"WhatsApp media {media.provider_id} failed its sha256 check")
        return data

    async def delete_media(self, media_id: str) -> None:
        """Delete uploaded media (``DELETE /{media-id}``)."""
        response = await self._request(
            self.http.build_request("DELETE", self._node(media_id), headers=self._auth())
        )
        self._read(response, templates.WASuccess, "media delete")

    # -- templates (WhatsApp Business Account) ------------------------------------------

    async def list_templates(
        self,
        *,
        name: str | None = None,
        status: Sequence[str] = (),
        category: Sequence[str] = (),
        language: Sequence[str] = (),
        quality_score: Sequence[str] = (),
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> TemplatePage:
        """One page of the account's templates, filtered as given (several values of
        a filter: any of them); ``page.after`` fetches the next page."""
        params: dict[str, str] = {"fields": TEMPLATE_FIELDS, "summary": "total_count"}
        filters = {
            "status": status,
            "category": category,
            "language": language,
            "quality_score": quality_score,
        }
        params.update({key: ",".join(values) for key, values in filters.items() if values})
        given = {"name": name, "limit": limit, "after": after, "before": before}
        params.update({key: str(value) for key, value in given.items() if value is not None})
        request = self.http.build_request(
            "GET", self._waba_url("message_templates"), headers=self._auth(), params=params
        )
        listed = self._read(await self._request(request), templates.WATemplateList, "templates")
        return listed.page()

    async def get_template(self, template_id: str) -> MessageTemplate:
        """One template by id, with its review ``status`` and ``quality_score``."""
        request = self.http.build_request(
            "GET",
            self._node(template_id),
            headers=self._auth(),
            params={"fields": TEMPLATE_FIELDS},
        )
        return self._read(await self._request(request), MessageTemplate, "template")

    async def create_template(self, template: TemplateDefinition) -> CreatedTemplate:
        """Submit ``template`` for review; the linter's errors refuse it first
        (:func:`chatbridge.whatsapp.templates.check`). Meta answers ``PENDING`` (or
        ``APPROVED`` at once) and reports the review by a ``message_template_status_
        update`` webhook (a :class:`~chatbridge.models.TemplateUpdate` event)."""
        templates.check(template)
        request = self.http.build_request(
            "POST", self._waba_url("message_templates"), headers=self._auth(), json=template.body()
        )
        return self._read(await self._request(request), CreatedTemplate, "template creation")

    async def edit_template(
        self,
        template_id: str,
        *,
        components: Sequence[TemplateComponent] | None = None,
        category: str | None = None,
        message_send_ttl_seconds: int | None = None,
    ) -> None:
        """Replace the components (all of them), the category or the time-to-live of an
        APPROVED, REJECTED or PAUSED template; it goes back to review. MessageInvalidError
        before any request when nothing is given or the category is none of Meta's; new
        components, or the current ones under a new category, are linted first against
        the template as Meta has it (read first)."""
        what = f"the edit of template {template_id}"
        if components is None and category is None and message_send_ttl_seconds is None:
            raise MessageInvalidError(
                f"nothing to edit in template {template_id}: "
                "give components, category or message_send_ttl_seconds"
            )
        if category is not None:
            templates.refuse(templates.lint_category(category), what)
        body: dict[str, object] = {
            "category": category,
            "message_send_ttl_seconds": message_send_ttl_seconds,
        }
        if components is not None or category is not None:
            current = await self.get_template(template_id)
            new_category = category or current.category
            if components is not None or new_category != current.category:
                checked = current.components if components is None else components
                issues = templates.lint_components(checked, new_category, current.parameter_format)
                templates.refuse(issues, what)
        if components is not None:
            body["components"] = [c.model_dump(exclude_none=True) for c in components]
        request = self.http.build_request(
            "POST",
            self._node(template_id),
            headers=self._auth(),
            json={key: value for key, value in body.items() if value is not None},
        )
        self._read(await self._request(request), templates.WASuccess, "template edit")

    async def unpause_template(self, template_id: str) -> None:
        """Unpause a template Meta paused (after pacing, the only way back); ProviderError
        with Meta's reason when it stays paused."""
        request = self.http.build_request(
            "POST", self._node(f"{template_id}/unpause"), headers=self._auth()
        )
        result = self._read(await self._request(request), templates.WAUnpause, "template unpause")
        if not result.success:
            raise ProviderError(
                f"WhatsApp did not unpause template {template_id}: {result.reason}",
                provider=self.name,
                provider_message=result.reason,
            )

    async def delete_template(self, name: str, template_id: str | None = None) -> None:
        """Delete the template ``name`` in every language, or only the one with
        ``template_id``."""
        params = {"name": name, **({"hsm_id": template_id} if template_id else {})}
        request = self.http.build_request(
            "DELETE", self._waba_url("message_templates"), headers=self._auth(), params=params
        )
        self._read(await self._request(request), templates.WASuccess, "template deletion")

    # -- business profile ---------------------------------------------------------------

    async def business_profile(self) -> BusinessProfile:
        """The phone number's business profile."""
        request = self.http.build_request(
            "GET",
            self._url("whatsapp_business_profile"),
            headers=self._auth(),
            params={"fields": ",".join(profile.FIELDS)},
        )
        found = self._read(await self._request(request), profile.WAProfileList, "profile")
        return found.data[0]

    async def update_business_profile(self, update: BusinessProfile) -> None:
        """Change the profile's set fields (checked against Meta's limits first)."""
        response = await self._post_json("whatsapp_business_profile", profile.update_body(update))
        self._read(response, templates.WASuccess, "profile update")

    # -- HTTP -------------------------------------------------------------------------

    def _node(self, node_id: str) -> str:
        return f"{self.config.base_url}/{self.config.api_version}/{node_id}"

    def _waba_url(self, edge: str) -> str:
        if not self.config.business_account_id:
            raise ConfigurationError(
                "managing WhatsApp templates needs business_account_id (the WABA id)"
            )
        return self._node(f"{self.config.business_account_id}/{edge}")

    def _url(self, edge: str) -> str:
        return self._node(f"{self.config.phone_number_id}/{edge}")

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.access_token.get_secret_value()}"}

    async def _post_json(self, edge: str, body: dict[str, object]) -> httpx.Response:
        request = self.http.build_request("POST", self._url(edge), headers=self._auth(), json=body)
        return await self._request(request)

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        raise error_for(response)
