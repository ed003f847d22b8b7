"""The README's demo runs offline and tells the story it promises."""

import pytest

from chatbridge.testing.demo import tour

pytestmark = pytest.mark.anyio


async def test_demo_tour(capsys: pytest.CaptureFixture[str]) -> None:
    await tour()
    out = capsys.readouterr().out
    assert "reply sent inside the window" in out
    assert "remedy: send an approved template message instead" in out
    assert "template sent outside the window" in out
    assert "-> fell back to email:ana@example.com: 'Your order #4711' sent" in out
    assert "the follower's WeChat tags are now ['VIP 客户']" in out
    whatsapp_templates = out.split("a template created, approved")[1].split("== WeChat")[0]
    assert "read, typing indicator shown" in whatsapp_templates
    assert "placeholders must be numbered 1, 2, 3... without gaps" in whatsapp_templates
    assert "after the fixes: 0 issues" in whatsapp_templates
    assert "PENDING" in whatsapp_templates
    assert "still under review, WhatsApp refuses it: 132001" in whatsapp_templates
    assert "template webhook: shipping_update (en_US) is now APPROVED" in whatsapp_templates
    assert "approved template sent after the window closed: wamid." in whatsapp_templates
    assert "已发货 — shipped today" in out
    assert "template message sent outside the window" in out
    assert "refused (quota_spent)" in out
    assert "lands in the same thread: True" in out
    assert "refused: the customer opted out" in out
    assert "sending works again" in out
    assert "-> 26 hours later WhatsApp refuses (window_closed): answer by email" in out
    timeline = out.split("both channels:")[1].splitlines()
    assert [line.split()[2:4] for line in timeline[1:5]] == [
        ["whatsapp", "<-"],
        ["whatsapp", "->"],
        ["email", "->"],
        ["email", "<-"],
    ]
    assert "1 conversation, open, first reply after 1 day, 2:00:00" in out
