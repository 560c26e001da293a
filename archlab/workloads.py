"""OLTP and OLAP workloads side by side: one synthetic `sales` table in any engine, a timer,
and the latency figure drawn from a table of measured runs.

    workloads.create_sales(con)                  # PostgreSQL (psycopg), SQLite or DuckDB
    workloads.grow_sales(con, 0, 100_000)        # rows 0..99 999, identical in every engine
    seconds = workloads.time_runs(lambda: con.execute(sql).fetchall(), repeat=5)
    workloads.latency_figure(timings, query="aggregate", rows=100_000)

The rows are a pure function of their id (multiplicative hashing), so every engine holds the
same data without shipping a file, and an aggregate gives the same answer everywhere.
`latency_figure` is a pure function of the timings table and the control values: tests call
it without a display.
"""

from __future__ import annotations

import time

import plotly.graph_objects as go

from .datasets import engine_of

SALES_DDL = """CREATE TABLE sales (
  id BIGINT PRIMARY KEY,
  customer_id BIGINT NOT NULL,
  category INTEGER NOT NULL,
  quantity INTEGER NOT NULL,
  price_cents BIGINT NOT NULL,
  ts TIMESTAMP NOT NULL,
  note TEXT NOT NULL
)"""

# Column values as functions of the row id i (Knuth's multiplicative hashing, 64-bit safe).
_COLUMNS = ("{i}", "1 + ({i} * 3266489917) % 4294967296 % 50000", "({i} * 2654435761) % 4294967296 % 8",
            "1 + ({i} * 40503) % 65536 % 4", "100 + ({i} * 2246822519) % 4294967296 % 10000")

_ROWS = {  # engine -> (row source for ids start..stop-1, timestamp expression, text concatenation)
    "postgres": ("generate_series({start}::bigint, {stop} - 1) AS g(i)",
                 "timestamp '2025-01-01' + i * interval '1 second'"),
    "duckdb": ("range({start}, {stop}) AS g(i)", "timestamp '2025-01-01' + i * interval '1 second'"),
    "sqlite": (None, "datetime('2025-01-01', '+' || i || ' seconds')"),
}

ENGINE_COLOURS = {"PostgreSQL": "#336791", "SQLite": "#7a9a01", "DuckDB": "#e6a700"}


def create_sales(con) -> None:
    """(Re)create the empty `sales` table in a psycopg, DuckDB or sqlite3 connection."""
    kind = engine_of(con)
    con.execute("DROP TABLE IF EXISTS sales")
    con.execute(SALES_DDL)
    if kind == "sqlite":
        con.commit()


def grow_sales(con, start: int, stop: int) -> int:
    """Append the rows with ids start..stop-1 to `sales`; returns the table's row count.

    PostgreSQL also gets VACUUM ANALYZE (fresh statistics and visibility map), as a
    production table would after a bulk load."""
    kind = engine_of(con)
    source, ts = _ROWS[kind]
    cols = ", ".join(c.format(i="i") for c in _COLUMNS)
    select = f"SELECT {cols}, {ts}, 'order note ' || i"
    if kind == "sqlite":
        con.execute(f"WITH RECURSIVE g(i) AS (SELECT {int(start)} UNION ALL SELECT i + 1 FROM g "
                    f"WHERE i < {int(stop) - 1}) INSERT INTO sales {select} FROM g")
        con.commit()
    else:
        con.execute(f"INSERT INTO sales {select} FROM {source.format(start=int(start), stop=int(stop))}")
    if kind == "postgres":
        if con.autocommit:
            con.execute("VACUUM ANALYZE sales")
        else:
            con.commit()
            con.execute("ANALYZE sales")
    return con.execute("SELECT count(*) FROM sales").fetchone()[0]


def time_runs(fn, repeat: int = 5, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `repeat` calls of fn() after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def latency_figure(timings, query: str, rows: int, log_scale: bool = True) -> go.Figure:
    """Median latency per engine as the table grows (left) and at `rows` rows (right).

    timings: a DataFrame with one row per timed run and columns engine, query, rows, seconds.
    query: which query's runs to draw. rows: the table size to highlight (the nearest measured
    size is used). log_scale: logarithmic axes on the left panel. Bars span the fastest to
    the slowest run (error bars), so noisy measurements are visible.
    """
    from plotly.subplots import make_subplots

    data = timings[timings["query"] == query]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                        subplot_titles=("median latency as the table grows", "at the selected size"))
    if data.empty:
        fig.add_annotation(text=f"no timings for query {query!r}", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_layout(height=380, title=f"{query}: no data")
        return fig
    sizes = sorted(int(s) for s in data["rows"].unique())
    at = min(sizes, key=lambda s: (abs(s - rows), s))
    stats = (data.assign(ms=data["seconds"] * 1000).groupby(["engine", "rows"])["ms"]
             .agg(["median", "min", "max"]).reset_index())
    engines = list(dict.fromkeys(data["engine"]))          # first-seen order, stable across controls
    for k, engine in enumerate(engines):
        colour = ENGINE_COLOURS.get(engine, _FALLBACK[k % len(_FALLBACK)])
        s = stats[stats["engine"] == engine].sort_values("rows")
        fig.add_trace(go.Scatter(
            x=s["rows"], y=s["median"], mode="lines+markers", name=engine, legendgroup=engine,
            line={"color": colour}, hovertemplate=f"{engine}<br>%{{x:,}} rows: %{{y:.3g}} ms<extra></extra>"),
            row=1, col=1)
        here = s[s["rows"] == at]
        med = float(here["median"].iloc[0]) if len(here) else float("nan")
        lo = float(here["min"].iloc[0]) if len(here) else float("nan")
        hi = float(here["max"].iloc[0]) if len(here) else float("nan")
        fig.add_trace(go.Bar(
            x=[engine], y=[med], name=engine, legendgroup=engine, showlegend=False, marker_color=colour,
            error_y={"type": "data", "symmetric": False, "array": [hi - med], "arrayminus": [med - lo]},
            text=[f"{med:.3g} ms"], textposition="outside",
            hovertemplate=f"{engine}: median %{{y:.3g}} ms<extra></extra>"), row=1, col=2)
    fig.add_vline(x=at, line_dash="dot", line_color="#888", row=1, col=1)
    axis = "log" if log_scale else "linear"
    fig.update_xaxes(title_text="rows in the table", type=axis, row=1, col=1)
    fig.update_yaxes(title_text="median latency (ms)", type=axis, row=1, col=1)
    fig.update_xaxes(title_text="engine", row=1, col=2)
    fig.update_yaxes(title_text="median latency (ms)", rangemode="tozero", row=1, col=2)
    fig.update_layout(height=400, margin={"l": 60, "r": 20, "t": 70, "b": 50}, plot_bgcolor="white",
                      title=f"{query}: {at:,} rows", legend={"orientation": "h", "y": -0.18})
    return fig


_FALLBACK = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#19d3f3")
