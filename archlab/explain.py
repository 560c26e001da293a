"""Query plans from PostgreSQL, DuckDB and SQLite as one tree, and the figure that draws it.

    plan = explain.postgres_plan(conn, "SELECT ...")    # EXPLAIN (ANALYZE, FORMAT JSON)
    plan = explain.duckdb_plan(con, "SELECT ...")        # EXPLAIN (FORMAT JSON) or ANALYZE
    plan = explain.sqlite_plan(con, "SELECT ...")        # EXPLAIN QUERY PLAN
    explain.plan_figure(plan)                            # a plotly tree: rows, cost, time per node

Parsing and drawing are pure functions of the JSON, so tests need no display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import plotly.graph_objects as go


@dataclass
class PlanNode:
    name: str                       # operator, e.g. "Index Scan" or "HASH_JOIN"
    detail: str = ""                # relation, index, condition...
    est_rows: float | None = None   # the planner's estimate
    rows: float | None = None       # actual rows (ANALYZE only; all loops)
    cost: float | None = None       # PostgreSQL total cost (planner units)
    time_ms: float | None = None    # actual time in this node and below (ANALYZE only)
    children: list[PlanNode] = field(default_factory=list)
    engine: str = ""

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, name: str) -> list[PlanNode]:
        """All nodes whose operator name contains `name` (case-insensitive)."""
        return [n for n in self.walk() if name.lower() in n.name.lower()]

    @property
    def label(self) -> str:
        return f"{self.name} {self.detail}".strip()


# -- PostgreSQL --------------------------------------------------------------------------

_PG_DETAIL = ("Relation Name", "Index Name", "Index Cond", "Filter", "Hash Cond", "Merge Cond",
              "Join Filter", "Recheck Cond", "Sort Key", "Group Key", "Strategy", "Join Type")


def parse_postgres(doc) -> PlanNode:
    """Parse the output of EXPLAIN (FORMAT JSON [, ANALYZE]) (a JSON string or the decoded list)."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    top = doc[0] if isinstance(doc, list) else doc
    root = _pg_node(top["Plan"])
    if "Execution Time" in top:
        root.time_ms = top["Execution Time"]
    return root


def _pg_node(p: dict) -> PlanNode:
    parts = []
    for key in _PG_DETAIL:
        if key in p:
            v = p[key]
            v = ", ".join(map(str, v)) if isinstance(v, list) else v
            parts.append(f"on {v}" if key == "Relation Name" else
                         f"using {v}" if key == "Index Name" else f"{key.lower()}: {v}")
    loops = p.get("Actual Loops", 1) or 1
    rows = p.get("Actual Rows")
    t = p.get("Actual Total Time")
    return PlanNode(
        name=p["Node Type"], detail=" ".join(parts), est_rows=p.get("Plan Rows"),
        rows=None if rows is None else rows * loops, cost=p.get("Total Cost"),
        time_ms=None if t is None else t * loops,
        children=[_pg_node(c) for c in p.get("Plans", [])], engine="postgres")


def postgres_plan(conn, sql: str, params=None, analyze: bool = True) -> PlanNode:
    """Plan of `sql` on a psycopg connection. ANALYZE runs the query (inside a transaction
    that is rolled back, so a plan of an INSERT changes nothing)."""
    opts = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    with conn.transaction(force_rollback=True):
        doc = conn.execute(f"EXPLAIN ({opts}) {sql}", params).fetchone()[0]
    return parse_postgres(doc)


# -- DuckDB -------------------------------------------------------------------------------

_DUCK_SKIP = {"RESULT_COLLECTOR", "EXPLAIN_ANALYZE", "EXPLAIN", "QUERY"}


def parse_duckdb(doc) -> PlanNode:
    """Parse DuckDB's EXPLAIN (FORMAT JSON) or EXPLAIN (ANALYZE, FORMAT JSON) output."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    if isinstance(doc, dict):           # ANALYZE: a profile whose tree is under "children"/"operator"
        nodes = doc.get("children") or doc.get("operator") or []
    else:
        nodes = doc
    node = nodes[0]
    while node.get("name", "").strip() in _DUCK_SKIP and node.get("children"):
        node = node["children"][0]
    return _duck_node(node)


def _duck_node(n: dict) -> PlanNode:
    info = n.get("extra_info", {}) or {}
    est = info.get("Estimated Cardinality")
    detail = []
    for key in ("Table", "Join Type", "Conditions", "Filters", "Aggregates", "Groups"):
        if key in info:
            v = info[key]
            v = ", ".join(map(str, v)) if isinstance(v, list) else v
            detail.append(f"on {v}" if key == "Table" else f"{key.lower()}: {v}")
    rows = n.get("operator_cardinality", n.get("intermediate_rows"))
    timing = n.get("operator_timing", n.get("timing"))
    children = [_duck_node(c) for c in n.get("children", [])]
    time_ms = None
    if timing is not None:   # DuckDB times each operator alone; make it inclusive like PostgreSQL
        time_ms = timing * 1000 + sum(c.time_ms or 0 for c in children)
    return PlanNode(name=n.get("name", "?").strip(), detail=" ".join(detail),
                    est_rows=float(est) if est not in (None, "") else None, rows=rows,
                    time_ms=time_ms, children=children, engine="duckdb")


def duckdb_plan(con, sql: str, params=None, analyze: bool = False) -> PlanNode:
    """Plan of `sql` on a DuckDB connection; analyze=True runs it and records rows and time."""
    opts = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    rows = con.execute(f"EXPLAIN ({opts}) {sql}", params).fetchall()
    return parse_duckdb(rows[0][1])


# -- SQLite -------------------------------------------------------------------------------

def parse_sqlite(rows) -> PlanNode:
    """Build a tree from EXPLAIN QUERY PLAN rows (id, parent, notused, detail).
    SQLite reports no row counts, costs or times: only the access path of each step."""
    nodes = {0: PlanNode(name="QUERY PLAN", engine="sqlite")}
    for node_id, parent, _unused, detail in rows:
        words = detail.split(" ", 1)
        node = PlanNode(name=words[0], detail=words[1] if len(words) > 1 else "", engine="sqlite")
        nodes[node_id] = node
        nodes.get(parent, nodes[0]).children.append(node)
    root = nodes[0]
    return root.children[0] if len(root.children) == 1 else root


def sqlite_plan(con, sql: str, params=()) -> PlanNode:
    return parse_sqlite(con.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())


# -- drawing -----------------------------------------------------------------------------

def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "–"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M{unit}"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k{unit}"
    return f"{x:.3g}{unit}" if isinstance(x, float) and x != int(x) else f"{int(x)}{unit}"


def plan_table(plan: PlanNode):
    """One row per node, indented by depth: the plan as a table."""
    import pandas as pd

    rows = []

    def visit(n: PlanNode, depth: int):
        rows.append({"node": "  " * depth + n.name, "detail": n.detail, "est. rows": n.est_rows,
                     "rows": n.rows, "cost": n.cost, "time (ms)": n.time_ms})
        for c in n.children:
            visit(c, depth + 1)

    visit(plan, 0)
    return pd.DataFrame(rows)


def plan_figure(plan: PlanNode, title: str = "") -> go.Figure:
    """The plan drawn as a tree, root at the top; each box says rows, cost and time.
    Colour shows the share of the query's time (or cost) spent in that node and below."""
    xs, ys, nodes, edges = [], [], [], []
    next_leaf = [0]

    def layout(n: PlanNode, depth: int) -> float:
        if n.children:
            cx = [layout(c, depth + 1) for c in n.children]
            x = sum(cx) / len(cx)
            edges.extend((x, -depth, c, -(depth + 1)) for c in cx)
        else:
            x = next_leaf[0]
            next_leaf[0] += 1
        xs.append(x)
        ys.append(-depth)
        nodes.append(n)
        return x

    layout(plan, 0)
    weight = "time_ms" if plan.time_ms else "cost" if plan.cost else None
    total = getattr(plan, weight) if weight else None
    share = [(getattr(n, weight) or 0) / total if total else 0.0 for n in nodes]
    text = [f"<b>{n.name}</b><br>rows {_fmt(n.rows)} (est. {_fmt(n.est_rows)})<br>"
            f"cost {_fmt(n.cost)} · {_fmt(n.time_ms, ' ms')}" for n in nodes]
    hover = [f"{n.label}<br>estimated rows: {_fmt(n.est_rows)}<br>actual rows: {_fmt(n.rows)}"
             f"<br>cost: {_fmt(n.cost)}<br>time: {_fmt(n.time_ms, ' ms')}" for n in nodes]
    ex, ey = [], []
    for x0, y0, x1, y1 in edges:
        ex += [x0, x1, None]
        ey += [y0, y1, None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#999", "width": 1},
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", text=text, textposition="bottom center", hovertext=hover,
        hoverinfo="text", showlegend=False,
        marker={"size": 22, "symbol": "square", "color": share, "cmin": 0, "cmax": 1,
                "colorscale": "YlOrRd", "line": {"color": "#333", "width": 1},
                "colorbar": {"title": {"text": f"share of {'time' if weight == 'time_ms' else 'cost'}"},
                             "tickformat": ".0%"} if weight else None}))
    depth = -min(ys) if ys else 0
    fig.update_layout(
        title=title or f"{plan.engine or 'query'} plan", height=max(260, 140 * (depth + 1) + 60),
        margin={"l": 20, "r": 20, "t": 50, "b": 20}, plot_bgcolor="white",
        xaxis={"visible": False, "range": [min(xs) - 0.7, max(xs) + 0.7]},
        yaxis={"visible": False, "range": [-depth - 0.8, 0.4]})
    return fig
