"""Hot/cold storage costs: storage tiers, the cost of keeping data in them, the cheapest
lifecycle (which tier at which age), and the figure the tiering widget draws.

    storage_costs.TIERS                                   # illustrative tiers, hottest first
    storage_costs.single_tier_cost(TIERS[1], size_gb=100, months=12, reads0=0.2)
    plan = storage_costs.cheapest_lifecycle(TIERS, size_gb=100, months=36, reads0=2, half_life=3)
    storage_costs.tiering_figure(size_gb=100, months=36, reads0=2, half_life=3)

The prices are ILLUSTRATIVE: rounded numbers in the style of public cloud object-storage
tiers (a standard tier, an infrequent-access tier, an instant-retrieval archive tier and a
deep archive tier), not live prices of any provider. Requests, transition fees and
per-object overheads are left out, so that every number can be checked by hand.

The model, per GB of data written at age 0 and deleted at age `months`:

- reads: in month m (age m, counting from 0) the data is read `reads(m) = reads0 * 0.5 ** (m /
  half_life)` times over (reads0 = 0.5 means half of it is read in the first month);
  half_life = inf gives a constant rate;
- a month in tier t costs `storage_gb_month[t] + reads(m) * retrieval_gb[t]`;
- data leaves a tier (moved colder, or deleted at the end) after k months there: if k is below
  the tier's `min_months`, the remaining `min_months - k` months are billed anyway (the
  early-deletion charge by which providers enforce a minimum storage duration);
- a lifecycle only moves data to colder tiers, never back (as lifecycle rules do).

Everything here is a pure function of its arguments; tests call them without a display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import plotly.graph_objects as go


@dataclass(frozen=True)
class Tier:
    name: str
    storage_gb_month: float     # $ per GB stored for one month
    retrieval_gb: float         # $ per GB read back
    min_months: int = 0         # minimum storage duration; leaving earlier bills the rest
    first_byte: str = ""        # typical time to first byte (for the legend only)


# Illustrative prices (see the module docstring): NOT live prices.
TIERS: tuple[Tier, ...] = (
    Tier("hot", 0.023, 0.0, 0, "milliseconds"),
    Tier("warm", 0.0125, 0.01, 1, "milliseconds"),
    Tier("cold", 0.004, 0.03, 3, "milliseconds"),
    Tier("archive", 0.001, 0.05, 6, "hours"),
)
TIER_COLOURS = {"hot": "#d62728", "warm": "#ff7f0e", "cold": "#1f77b4", "archive": "#17becf"}


def reads_at(month: int, reads0: float, half_life: float = math.inf) -> float:
    """Full reads of the data in month `month` of its life (see the module docstring)."""
    if half_life == math.inf:
        return float(reads0)
    return float(reads0) * 0.5 ** (month / half_life)


@dataclass
class Lifecycle:
    schedule: list[int]          # tier index for each month of life
    monthly: list[float]         # $ billed in each month (storage, retrieval, early-deletion charges)
    total: float                 # $ over the whole life

    def describe(self, tiers=TIERS) -> str:
        """E.g. 'hot for months 0-2 → cold for months 3-35'."""
        parts, start = [], 0
        for m in range(1, len(self.schedule) + 1):
            if m == len(self.schedule) or self.schedule[m] != self.schedule[start]:
                span = f"month {start}" if m - 1 == start else f"months {start}-{m - 1}"
                parts.append(f"{tiers[self.schedule[start]].name} for {span}")
                start = m
        return " → ".join(parts)


def lifecycle_cost(schedule, tiers=TIERS, size_gb: float = 1.0, reads0: float = 0.0,
                   half_life: float = math.inf, min_duration: bool = True,
                   retrieval_fees: bool = True) -> Lifecycle:
    """Cost of one schedule (tier index per month, never moving to a hotter tier)."""
    schedule = [int(t) for t in schedule]
    if not schedule:
        raise ValueError("a schedule needs at least one month")
    if any(b < a for a, b in zip(schedule, schedule[1:], strict=False)):
        raise ValueError("a lifecycle only moves data to colder tiers")
    monthly, held = [], 0
    for m, t in enumerate(schedule):
        tier = tiers[t]
        cost = tier.storage_gb_month + (reads_at(m, reads0, half_life) * tier.retrieval_gb if retrieval_fees else 0.0)
        if m > 0 and t != schedule[m - 1]:                       # moved: the previous tier's early charge
            cost += _early(tiers[schedule[m - 1]], held, min_duration)
            held = 0
        held += 1
        monthly.append(cost * size_gb)
    monthly[-1] += _early(tiers[schedule[-1]], held, min_duration) * size_gb   # deleted at the end
    return Lifecycle(schedule, monthly, sum(monthly))


def _early(tier: Tier, months_held: int, min_duration: bool) -> float:
    return tier.storage_gb_month * max(0, tier.min_months - months_held) if min_duration else 0.0


def single_tier_cost(tier: Tier, size_gb: float, months: int, reads0: float, half_life: float = math.inf,
                     min_duration: bool = True, retrieval_fees: bool = True) -> float:
    """$ to keep `size_gb` in one tier for `months` months, then delete it."""
    return lifecycle_cost([0] * int(months), (tier,), size_gb, reads0, half_life, min_duration, retrieval_fees).total


def cheapest_lifecycle(tiers=TIERS, size_gb: float = 1.0, months: int = 12, reads0: float = 0.0,
                       half_life: float = math.inf, min_duration: bool = True,
                       retrieval_fees: bool = True) -> Lifecycle:
    """The cheapest schedule, by dynamic programming over (month, tier, months held in it).

    Months held are counted up to the tier's minimum duration (beyond it they no longer change
    any charge), so there are at most sum(min_months + 1) states per month."""
    months = int(months)
    if months < 1:
        raise ValueError("months must be at least 1")
    caps = [t.min_months if min_duration else 0 for t in tiers]

    def month_cost(t, m):
        return tiers[t].storage_gb_month + (reads_at(m, reads0, half_life) * tiers[t].retrieval_gb
                                            if retrieval_fees else 0.0)

    best = {(t, min(1, caps[t])): (month_cost(t, 0), None) for t in range(len(tiers))}
    back = [best]
    for m in range(1, months):
        new: dict = {}
        for (t, k), (c, _) in best.items():
            for t2 in range(t, len(tiers)):
                if t2 == t:
                    state, add = (t, min(k + 1, caps[t])), month_cost(t, m)
                else:
                    state, add = (t2, min(1, caps[t2])), _early(tiers[t], k, min_duration) + month_cost(t2, m)
                if state not in new or c + add < new[state][0] - 1e-15:
                    new[state] = (c + add, (t, k))
        best = new
        back.append(best)
    end = min(best, key=lambda s: (best[s][0] + _early(tiers[s[0]], s[1], min_duration), s))
    schedule, state = [], end
    for m in range(months - 1, -1, -1):
        schedule.append(state[0])
        state = back[m][state][1]
    schedule.reverse()
    return lifecycle_cost(schedule, tiers, size_gb, reads0, half_life, min_duration, retrieval_fees)


def tiering_figure(size_gb: float = 1000.0, months: int = 36, reads0: float = 2.0, half_life: float = 3.0,
                   min_duration: bool = True, retrieval_fees: bool = True, tiers=TIERS) -> go.Figure:
    """Left: the cheapest lifecycle's bill month by month, coloured by tier. Right: its total
    next to keeping everything in one tier. All amounts in illustrative dollars."""
    from plotly.subplots import make_subplots

    months = int(months)
    best = cheapest_lifecycle(tiers, size_gb, months, reads0, half_life, min_duration, retrieval_fees)
    singles = [single_tier_cost(t, size_gb, months, reads0, half_life, min_duration, retrieval_fees) for t in tiers]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.64, 0.36], horizontal_spacing=0.12,
                        subplot_titles=("cheapest lifecycle: bill per month", "total over the data's life"))
    ages = list(range(months))
    for i, tier in enumerate(tiers):
        ys = [c if t == i else 0.0 for c, t in zip(best.monthly, best.schedule, strict=True)]
        if any(t == i for t in best.schedule):
            fig.add_trace(go.Bar(
                x=ages, y=ys, name=f"{tier.name} (${tier.storage_gb_month}/GB-mo, ${tier.retrieval_gb}/GB read, "
                                   f"min {tier.min_months} mo)",
                marker_color=TIER_COLOURS.get(tier.name), legendgroup=tier.name,
                customdata=[reads_at(m, reads0, half_life) for m in ages],
                hovertemplate=f"{tier.name}, month %{{x}}: $%{{y:.4g}}<br>reads: %{{customdata:.3g}}× the data"
                              "<extra></extra>"), row=1, col=1)
    labels = [f"all {t.name}" for t in tiers] + ["cheapest lifecycle"]
    totals = [*singles, best.total]
    colours = [TIER_COLOURS.get(t.name, "#888") for t in tiers] + ["#2ca02c"]
    fig.add_trace(go.Bar(x=labels, y=totals, marker_color=colours, showlegend=False,
                         text=[f"${v:,.2f}" for v in totals], textposition="outside",
                         hovertemplate="%{x}: $%{y:,.2f}<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="age of the data (months)", row=1, col=1)
    fig.update_yaxes(title_text="cost in that month ($, illustrative prices)", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="strategy", row=1, col=2)
    fig.update_yaxes(title_text=f"total cost for {size_gb:,.0f} GB over {months} months ($)",
                     rangemode="tozero", range=[0, max(totals) * 1.2 if max(totals) > 0 else 1], row=1, col=2)
    saving = 1 - best.total / min(singles) if min(singles) > 0 else 0.0
    fig.update_layout(barmode="stack", height=430, plot_bgcolor="white", margin={"l": 70, "r": 20, "t": 90, "b": 60},
                      legend={"orientation": "h", "y": -0.25},
                      title={"text": f"{best.describe(tiers)}<br><sup>${best.total:,.2f} in total, "
                                     f"{saving:.0%} below the best single tier</sup>", "font": {"size": 14}})
    return fig
