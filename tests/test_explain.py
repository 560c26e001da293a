"""Plans from the three engines parse into one tree; the figure is a pure function."""

from __future__ import annotations

import sqlite3

import duckdb
import plotly.graph_objects as go
import pytest

import archlab
from archlab import explain
from archlab.widgets import explain_widget, interactive_figure

SQL = ("SELECT c.country, count(*) FROM orders o JOIN customers c USING (customer_id) "
       "WHERE o.status = 'paid' GROUP BY c.country")

PG_SAMPLE = [{"Plan": {"Node Type": "Nested Loop", "Join Type": "Inner", "Plan Rows": 10, "Total Cost": 20.5,
                       "Actual Rows": 4, "Actual Total Time": 0.5, "Actual Loops": 1,
                       "Plans": [{"Node Type": "Seq Scan", "Relation Name": "a", "Plan Rows": 10, "Total Cost": 1.1,
                                  "Actual Rows": 2, "Actual Total Time": 0.1, "Actual Loops": 1},
                                 {"Node Type": "Index Scan", "Relation Name": "b", "Index Name": "b_pkey",
                                  "Plan Rows": 1, "Total Cost": 0.3, "Actual Rows": 2, "Actual Total Time": 0.05,
                                  "Actual Loops": 2}]},
              "Execution Time": 0.7}]


def test_parse_postgres_sample_multiplies_loops():
    plan = explain.parse_postgres(PG_SAMPLE)
    assert [n.name for n in plan.walk()] == ["Nested Loop", "Seq Scan", "Index Scan"]
    idx = plan.find("Index Scan")[0]
    assert idx.rows == 4 and idx.time_ms == pytest.approx(0.1) and "b_pkey" in idx.detail
    assert plan.time_ms == 0.7 and plan.cost == 20.5


@pytest.fixture(scope="module")
def engines():
    pg = archlab.postgres()
    db = pg.create_database("test_explain")
    conn = pg.connect(db)
    archlab.datasets.load_into(conn)
    d = duckdb.connect()
    archlab.datasets.load_into(d)
    s = sqlite3.connect(":memory:")
    archlab.datasets.load_into(s)
    return conn, d, s


def test_postgres_plan_has_rows_cost_time(engines):
    conn, _, _ = engines
    plan = explain.postgres_plan(conn, SQL)
    assert plan.engine == "postgres" and plan.time_ms > 0
    scans = plan.find("Scan")
    assert scans and all(n.rows is not None and n.cost is not None for n in scans)


def test_postgres_plan_analyze_changes_nothing(engines):
    conn, _, _ = engines
    before = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    explain.postgres_plan(conn, "DELETE FROM order_items")
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == before
    assert conn.execute("SELECT count(*) FROM order_items").fetchone()[0] > 0


def test_duckdb_plans_estimate_and_analyze(engines):
    _, d, _ = engines
    est = explain.duckdb_plan(d, SQL)
    assert est.find("SEQ_SCAN") and est.rows is None
    ran = explain.duckdb_plan(d, SQL, analyze=True)
    assert ran.rows == 10 and ran.time_ms > 0          # ten countries in the data set


def test_sqlite_plan_shows_access_paths(engines):
    _, _, s = engines
    plan = explain.sqlite_plan(s, SQL)
    details = " ".join(n.label for n in plan.walk())
    assert "SCAN" in details and "PRIMARY KEY" in details


def test_plan_figure_draws_every_node(engines):
    conn, d, s = engines
    for plan in (explain.postgres_plan(conn, SQL), explain.duckdb_plan(d, SQL), explain.sqlite_plan(s, SQL)):
        fig = explain.plan_figure(plan)
        assert isinstance(fig, go.Figure)
        nodes = fig.data[1]
        assert len(nodes.x) == len(list(plan.walk()))
        assert all(t.startswith("<b>") for t in nodes.text)
    table = explain.plan_table(explain.postgres_plan(conn, SQL))
    assert list(table.columns) == ["node", "detail", "est. rows", "rows", "cost", "time (ms)"]


def test_interactive_figure_survives_a_failing_value():
    import ipywidgets as W

    def fig(n):
        if n == 3:
            raise ValueError("three is not allowed")
        return go.Figure(go.Scatter(x=list(range(n)), y=list(range(n))))

    slider = W.IntSlider(value=2, min=0, max=5)
    box = interactive_figure(fig, {"n": slider})
    assert len(box.figure.data[0].x) == 2
    slider.value = 3
    assert "three is not allowed" in box.message.value
    slider.value = 5
    assert box.message.value == "" and len(box.figure.data[0].x) == 5


def test_explain_widget_switch_and_engine(engines):
    _, d, s = engines
    calls = []
    w = explain_widget({"q": SQL}, {"duckdb": lambda q: explain.duckdb_plan(d, q),
                                    "sqlite": lambda q: explain.sqlite_plan(s, q)},
                       {"index": lambda on: calls.append(on)})
    engine, switch = w.children[0].children[1], w.children[0].children[2]
    engine.value = "sqlite"
    switch.value = True
    assert calls[-1] is True and "sqlite" in w.figure.layout.title.text and w.message.value == ""


def test_explain_widget_draws_every_control_combination(engines):
    import itertools

    conn, d, s = engines
    queries = {"by id": "SELECT * FROM events WHERE event_id = 1234",
               "by customer": "SELECT * FROM events WHERE customer_id = 7",
               "join": SQL}

    def index(on):
        for con in (conn, d, s):
            con.execute("CREATE INDEX IF NOT EXISTS ev_c ON events (customer_id)" if on
                        else "DROP INDEX IF EXISTS ev_c")

    w = explain_widget(queries, {"PostgreSQL": lambda q: explain.postgres_plan(conn, q),
                                 "DuckDB": lambda q: explain.duckdb_plan(d, q, analyze=True),
                                 "SQLite": lambda q: explain.sqlite_plan(s, q)}, {"index": index})
    query, engine, switch = w.children[0].children
    for q, e, on in itertools.product(query.options, engine.options, (True, False)):
        query.value, engine.value, switch.value = q, e, on
        assert w.message.value == "", (q, e, on, w.message.value)
        assert len(w.figure.data[1].x) >= 1
