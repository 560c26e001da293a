"""The EXPLAIN plan widget: pick a query and an engine, switch an index on or off, see the plan."""

from __future__ import annotations

from ..explain import plan_figure
from .base import interactive_figure


def explain_widget(queries: dict[str, str], planners: dict, switches: dict | None = None):
    """queries: label → SQL; planners: engine label → function(sql) → PlanNode;
    switches: label → function(on: bool) run before planning (e.g. create or drop an index)."""
    import ipywidgets as W

    switches = switches or {}
    controls = {"query": W.Dropdown(options=list(queries), description="query"),
                "engine": W.Dropdown(options=list(planners), description="engine")}
    for i, label in enumerate(switches):
        controls[f"switch{i}"] = W.Checkbox(value=False, description=label)

    def figure(query, engine, **flags):
        for i, apply in enumerate(switches.values()):
            apply(flags[f"switch{i}"])
        plan = planners[engine](queries[query])
        on = [label for i, label in enumerate(switches) if flags[f"switch{i}"]]
        return plan_figure(plan, title=f"{engine}: {query}" + (f" ({', '.join(on)})" if on else ""))

    return interactive_figure(figure, controls)
