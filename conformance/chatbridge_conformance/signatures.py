"""Signature checks: every sample, signed, is accepted (and answered); every tampered
copy of every signed sample is refused with SignatureError, whatever part of it was
tampered with; signed timestamps are honoured only within the provider's tolerance; the
URL verification handshake answers only the provider; a one-time signature is not
accepted twice."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta

import pytest

from chatbridge.clock import FAKE_EPOCH
from chatbridge.errors import SignatureError, WebhookError
from chatbridge.webhook import WebhookRequest, WebhookResponse
from chatbridge_conformance.harness import Harness
from chatbridge_conformance.tampering import (
    SignedPart,
    altered_url,
    replace,
    signed_parts,
    tampered,
)

_SECOND = timedelta(seconds=1)


def forgeries(harness: Harness) -> Iterator[tuple[str, WebhookRequest]]:
    """Each sample signed, then tampered with every way, with a description."""
    kit = harness.kit
    samples = kit.samples
    for index, sample in enumerate(samples):
        unsigned = kit.webhook(sample.body)
        signed = kit.sign(unsigned, None)
        where = f"sample {sample.name}"
        yield f"{where} unsigned", unsigned
        yield f"{where} signed with another secret", kit.sign(unsigned, "not-the-secret")
        parts = [p for p in signed_parts(unsigned, signed) if p.name not in kit.unsigned_parts]
        for part in parts:
            yield f"{where} without {part.where} {part.name}", replace(signed, part, None)
            for what, value in tampered(part.value):
                yield f"{where}, {part.where} {part.name} {what}", replace(signed, part, value)
        if kit.signs_body:
            other = samples[(index + 1) % len(samples)].body
            bodies = {"another sample's body": other, "a character changed": _altered(signed.body)}
            for what, body in bodies.items():
                if body != signed.body:
                    altered = WebhookRequest(signed.method, signed.url, signed.headers, body)
                    yield f"{where} with {what}", altered
        if kit.signs_url:
            for what, request in altered_url(signed):
                yield f"{where} sent to {what}", request


def _moved(request: WebhookRequest, parts: list[SignedPart]) -> WebhookRequest | None:
    """``request`` (signed) carrying ``parts`` (another request's signature) instead of
    its own, if it has room."""
    try:
        for part in parts:
            request = replace(request, part, part.value)
    except (KeyError, TypeError, ValueError):
        return None
    return request


def _altered(body: bytes) -> bytes:
    """``body`` with its middle letter or digit changed (so it still parses)."""
    middle = len(body) // 2
    for index in sorted(range(len(body)), key=lambda i: abs(i - middle)):
        if chr(body[index]).isalnum():
            changed = b"1" if body[index] != ord("1") else b"2"
            return body[:index] + changed + body[index + 1 :]
    return body + b"1"


async def _accepted(
    harness: Harness,
    requests: Iterable[tuple[str, WebhookRequest]],
    refusal: type[WebhookError],
) -> list[str]:
    """Which of ``requests`` the channel accepted; the others must be refused with
    ``refusal``, showing no secret."""
    accepted = []
    for what, request in requests:
        try:
            await harness.channel.receive(request)
        except refusal as refused:
            harness.assert_no_secret(refused, what)
        else:
            accepted.append(what)
    return accepted


class SignatureChecks:
    @pytest.mark.anyio
    async def test_every_signed_sample_is_accepted(self, harness: Harness) -> None:
        answer_type = harness.kit.facts.answer_type
        for sample in harness.kit.samples:
            result = await harness.channel.receive(harness.signed(sample.body))
            answer = await harness.channel.answer(result)
            assert isinstance(answer, WebhookResponse), f"sample {sample.name} answered {answer}"
            if answer_type is not None:
                shown = f"sample {sample.name} answered {answer.media_type}, not {answer_type}"
                assert answer.media_type == answer_type, shown

    @pytest.mark.anyio
    async def test_every_tampered_signature_is_refused(self, harness: Harness) -> None:
        accepted = await _accepted(harness, forgeries(harness), SignatureError)
        assert not accepted, "tampered webhooks were accepted:\n" + "\n".join(accepted)

    @pytest.mark.anyio
    async def test_signed_timestamps_are_honoured_only_within_the_tolerance(
        self, harness: Harness
    ) -> None:
        tolerance = harness.kit.facts.signature_tolerance
        if tolerance is None:
            pytest.skip(f"{harness.kit.name} signatures carry no timestamp")
        signed_at = FAKE_EPOCH  # where the kit signs
        edges = {
            "just inside the tolerance, late": (signed_at + tolerance - _SECOND, True),
            "exactly at the tolerance, late": (signed_at + tolerance, True),
            "exactly at the tolerance, early": (signed_at - tolerance, True),
            "replayed after the tolerance": (signed_at + tolerance + _SECOND, False),
            "dated in the future beyond it": (signed_at - tolerance - _SECOND, False),
        }
        wrong = []
        for sample in harness.kit.samples:
            for what, (now, accepted) in edges.items():
                harness.clock.set(now)
                try:
                    await harness.channel.receive(harness.signed(sample.body))
                except SignatureError:
                    wrong += [f"sample {sample.name} {what}: refused"] if accepted else []
                else:
                    wrong += [] if accepted else [f"sample {sample.name} {what}: accepted"]
        assert not wrong, "\n".join(wrong)

    @pytest.mark.anyio
    async def test_the_url_verification_answers_only_the_provider(self, harness: Harness) -> None:
        kit = harness.kit
        if kit.handshake is None:
            pytest.skip(f"{kit.name} has no URL verification handshake")
        request, answer = kit.handshake(None)
        result = await harness.channel.receive(request)
        assert result.response is not None and result.response.body == answer
        forged, _ = kit.handshake("not-the-secret")
        wrong = [("made with another secret", forged)]
        for part in signed_parts(forged, request):  # what the secret decides
            wrong += [
                (f"{part.name} {what}", replace(request, part, v))
                for what, v in tampered(part.value)
            ]
        for name, value in request.query.items():
            wrong.append(
                (f"without {name}", replace(request, SignedPart("query", name, value), None))
            )
        accepted = await _accepted(harness, wrong, WebhookError)
        assert not accepted, "verification requests answered:\n" + "\n".join(accepted)

    @pytest.mark.anyio
    async def test_a_spent_signature_is_refused_on_another_body(self, harness: Harness) -> None:
        """Where the signature does not cover the body, its one-time value (Mailgun's
        token) must not sign a second, different body."""
        kit = harness.kit
        if kit.signs_body:
            pytest.skip(f"{kit.name} signatures cover the body")
        samples, accepted, tried = kit.samples, [], 0
        for index, sample in enumerate(samples):
            unsigned = kit.webhook(sample.body)
            signed = kit.sign(unsigned, None)
            await harness.channel.receive(signed)  # spends the signature
            parts = signed_parts(unsigned, signed)
            kind = unsigned.header("content-type")
            others = [kit.webhook(o.body) for o in [*samples[index + 1 :], *samples[:index]]]
            same_kind = [other for other in others if other.header("content-type") == kind]
            moved = next(
                (m for other in same_kind if (m := _moved(kit.sign(other, None), parts))), None
            )
            if moved is None:
                continue  # no other body of this kind to move the signature to
            tried += 1
            try:
                await harness.channel.receive(moved)
            except SignatureError:
                continue
            accepted.append(f"sample {sample.name}'s signature on another body")
        assert tried, "no two samples of one kind to move a signature between"
        assert not accepted, "spent signatures were accepted again:\n" + "\n".join(accepted)
