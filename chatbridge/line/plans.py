"""LINE Official Account plans as data: per region, the messages a month includes, the
monthly fee and the price of each additional message, grouped in presets that each
name their source and date (docs/line.md, "Plans"). Plans change over time and by
region, so a channel's plan is configuration (``LineConfig.plan``), not a constant."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.errors import ConfigurationError
from chatbridge.policy import Overage


class Plan(BaseModel):
    """One subscription plan of one region.

    ``overage`` is the price of a message past ``included`` (None: the plan sends no
    additional messages, so its quota is a hard limit). ``tiered``: the price falls
    with volume and ``overage`` is its highest step, so projected costs are upper
    bounds. ``monthly_fee`` is None where the source gives none.
    """

    model_config = ConfigDict(frozen=True)

    region: str
    name: str
    included: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    monthly_fee: Decimal | None = None
    overage: Decimal | None = Field(default=None, ge=0)
    tiered: bool = False

    def overage_rules(self, cap: Decimal | None = None) -> Overage | None:
        """The policy's :class:`~chatbridge.policy.Overage` for this plan, held to
        ``cap`` (in the plan's currency); None when the plan has no overage."""
        if self.overage is None:
            if cap is not None:
                raise ConfigurationError(
                    f"LINE's {self.region} {self.name} plan sends no additional messages, "
                    "so a spending cap does not apply"
                )
            return None
        return Overage(price=self.overage, currency=self.currency, cap=cap)


class PlanPreset(BaseModel):
    """A dated table of plans from one set of sources."""

    model_config = ConfigDict(frozen=True)

    key: str
    title: str
    #: The first day the table applies (or the date it was read, see ``note``).
    as_of: date
    sources: tuple[str, ...]
    note: str = ""
    plans: tuple[Plan, ...]

    def plan(self, region: str, name: str) -> Plan:
        """The plan called ``name`` in ``region`` (case-insensitive)."""
        for plan in self.plans:
            if plan.region.lower() == region.lower() and plan.name.lower() == name.lower():
                return plan
        known = ", ".join(f"{p.region}/{p.name}" for p in self.plans)
        raise ConfigurationError(f"preset {self.key!r} has no {region}/{name} plan ({known})")


def _plans(
    region: str,
    currency: str,
    rows: tuple[tuple[str, int, str | None, str | None], ...],
    *,
    tiered: bool = False,
) -> tuple[Plan, ...]:
    return tuple(
        Plan(
            region=region,
            name=name,
            included=included,
            currency=currency,
            monthly_fee=Decimal(fee) if fee is not None else None,
            overage=Decimal(overage) if overage is not None else None,
            tiered=tiered and overage is not None,
        )
        for name, included, fee, overage in rows
    )


#: The table of issue 17's seed, exactly as given. It is LINE's first plan table
#: (April 2019, "LINE Official Account 2.0"): Japan's until May 2023 and Taiwan's until
#: August 2023 (see the sources). Fees are given where a source states them.
SEED = PlanPreset(
    key="seed-2019",
    title="issue 17 seed table (LINE's 2019 plans)",
    as_of=date(2019, 4, 18),
    sources=(
        "chatbridge issue 17 (the seed's table: included messages and overage prices)",
        "netshop.impress.co.jp/node/6219 (2019-02-15: JP free ¥0, Light ¥5,000, "
        "Standard ¥15,000; 1,000 to 45,000 free messages)",
        "ad-tec.jp/blogs/sns/20201019 (2020-10: JP free 1,000 hard; Light 15,000 then ¥5; "
        "Standard up to ¥3)",
        "cacafly.com 2023-09 and blog.alleypin.com 2023 (TW before 2023-09: free 500; "
        "NT$800 4,000 + NT$0.2; NT$4,000 25,000 + from NT$0.15)",
    ),
    note="TH and global fees are not stated by the seed; JP Standard's ¥3 was the "
    "highest step of a falling price (modelled flat here, as the seed gives it).",
    plans=(
        *_plans("JP", "JPY", (("free", 1000, "0", None),)),
        *_plans("JP", "JPY", (("light", 15000, "5000", "5"), ("standard", 45000, "15000", "3"))),
        *_plans("TW", "TWD", (("free", 500, "0", None),)),
        *_plans("TW", "TWD", (("light", 4000, "800", "0.2"), ("standard", 25000, "4000", "0.15"))),
        *_plans("TH", "THB", (("free", 1000, "0", None),)),
        *_plans("TH", "THB", (("light", 15000, None, "0.08"), ("standard", 35000, None, "0.04"))),
        *_plans("global", "USD", (("free", 500, "0", None),)),
        *_plans(
            "global", "USD", (("light", 15000, None, "0.05"), ("standard", 45000, None, "0.03"))
        ),
    ),
)

#: Japan since 1 June 2023 (tax excluded).
JP_2023 = PlanPreset(
    key="jp-2023-06",
    title="Japan, since 2023-06-01",
    as_of=date(2023, 6, 1),
    sources=(
        "developers.line.biz/en/docs/messaging-api/pricing/ (Japan: "
        "lycbiz.com/jp/service/line-official-account/plan/)",
        "lycbiz.com/jp/news/line-official-account/20221031/ (the change, Japan only)",
        "sogo-ad.jp/blog/line-plan_202406 (2024-06), linelab.jp/lineofficial-change-for-plan, "
        "kinz0.com/?p=1790 (agree: ¥0/200/none, ¥5,000/5,000/none, ¥15,000/30,000/up to ¥3)",
    ),
    note="Standard's additional messages cost up to ¥3, falling with volume: ¥3 is an upper bound.",
    plans=_plans(
        "JP",
        "JPY",
        (
            ("communication", 200, "0", None),
            ("light", 5000, "5000", None),
            ("standard", 30000, "15000", "3"),
        ),
        tiered=True,
    ),
)

#: Taiwan since 1 September 2023 (tax excluded).
TW_2023 = PlanPreset(
    key="tw-2023-09",
    title="Taiwan, since 2023-09-01",
    as_of=date(2023, 9, 1),
    sources=(
        "developers.line.biz/en/docs/messaging-api/pricing/ (Taiwan: "
        "tw.linebiz.com/service/account-solutions/line-official-account/)",
        "help.firstline.cc/feature/channels/line/pricing (table of 2023-09, citing "
        "tw.linebiz.com/faq/oa-price/)",
        "cacafly.com (2023-09 new rates) and blog.alleypin.com (2023): the same table",
    ),
    note="High usage's additional messages cost from NT$0.2, falling with volume: "
    "NT$0.2 is an upper bound. lionfans.cc (2025) gives other fees; not used.",
    plans=_plans(
        "TW",
        "TWD",
        (("light", 200, "0", None), ("medium", 3000, "800", None), ("high", 6000, "1200", "0.2")),
        tiered=True,
    ),
)

#: Thailand since 1 August 2024 (before 7% VAT). LINE's pages read as quoted.
TH_2024 = PlanPreset(
    key="th-2024-08",
    title="Thailand, since 2024-08-01",
    as_of=date(2024, 8, 1),
    sources=(
        "developers.line.biz/en/docs/messaging-api/pricing/ (Thailand: "
        "lineforbusiness.com/th/service/line-oa-features/broadcast-message)",
        "lineforbusiness.com/th/news/20240619_1 (from 2024-08-01; free 500 -> 300)",
        "github.com/taiyousan15/marketing-hub, research/runs/20260201_161943__line-free-"
        "tier-limits (2026-02-01), and public notes read 2026-08 to 2026-10, quoting both "
        "pages: free 300 / none; Basic ฿1,280, 15,000 + ฿0.10; Pro ฿1,780, 35,000 + ฿0.06",
    ),
    note="One source gives Pro's additional messages as ฿0.04-0.06 (falling with "
    "volume): both paid plans are marked tiered, so a cost is an upper bound. "
    "VAT-inclusive fees ฿1,370 / ฿1,905 also seen.",
    plans=_plans(
        "TH",
        "THB",
        (
            ("free", 300, "0", None),
            ("basic", 15000, "1280", "0.10"),
            ("pro", 35000, "1780", "0.06"),
        ),
        tiered=True,
    ),
)

#: The other regions' plans (LINE's "Other regions" page), as read in 2026.
GLOBAL_2026 = PlanPreset(
    key="global-2026",
    title="Other regions, read 2026",
    as_of=date(2026, 2, 1),
    sources=(
        "developers.line.biz/en/docs/messaging-api/pricing/ (Other regions: "
        "www.lycbiz.jp/en/other/)",
        "github.com/taiyousan15/marketing-hub (as above, 2026-02-01): communication 500 "
        "free; US$50, 10,000; US$150, 40,000; US, Singapore, Indonesia: the free plan only "
        "(help2.line.me/official_account/android/pc?lang=en&contentId=20013992)",
        "a public note of 2026-07-24 citing www.lycbiz.jp/en/other/: the same plans, "
        "Standard's additional messages at US$0.05",
    ),
    note="as_of is the date read, not a start date. The additional-message price has one "
    "source. Where only the free plan is sold, use it alone.",
    plans=_plans(
        "global",
        "USD",
        (
            ("communication", 500, "0", None),
            ("light", 10000, "50", None),
            ("standard", 40000, "150", "0.05"),
        ),
    ),
)

PRESETS: dict[str, PlanPreset] = {p.key: p for p in (SEED, JP_2023, TW_2023, TH_2024, GLOBAL_2026)}


def find(preset: str, region: str, name: str) -> Plan:
    """The plan ``name`` of ``region`` in the preset keyed ``preset``."""
    try:
        return PRESETS[preset].plan(region, name)
    except KeyError:
        raise ConfigurationError(
            f"no LINE plan preset {preset!r} (known: {', '.join(PRESETS)})"
        ) from None
