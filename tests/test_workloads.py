"""archlab.workloads: the same sales rows in every engine, and the latency figure and widget
(pure functions of a timings table, called here without a display)."""

from __future__ import annotations

import sqlite3
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from archlab import workloads
from archlab.widgets.workloads import latency_widget

AGG = "SELECT category, sum(quantity * price_cents), count(*) FROM sales GROUP BY category ORDER BY category"
ENGINES = ("PostgreSQL", "SQLite", "DuckDB")
QUERIES = ("aggregate", "point lookup")
SIZES = (1_000, 10_000, 100_000)


def fake_timings(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for e, engine in enumerate(ENGINES):
        for q, query in enumerate(QUERIES):
            for n in SIZES:
                for run in range(5):
                    rows.append({"engine": engine, "query": query, "rows": n, "run": run,
                                 "seconds": (e + 1) * (q + 1) * n * 1e-8 * (1 + rng.random())})
    return pd.DataFrame(rows)


def test_every_engine_holds_the_same_rows():
    answers = []
    for con in (sqlite3.connect(":memory:"), duckdb.connect()):
        workloads.create_sales(con)
        assert workloads.grow_sales(con, 0, 500) == 500
        assert workloads.grow_sales(con, 500, 2_000) == 2_000
        answers.append([tuple(r) for r in con.execute(AGG).fetchall()])
        assert con.execute("SELECT min(quantity), max(quantity) FROM sales").fetchone() == (1, 4)
    assert answers[0] == answers[1]
    assert len(answers[0]) == 8 and sum(r[2] for r in answers[0]) == 2_000


def test_postgres_holds_the_same_rows():
    import archlab

    pg = archlab.postgres()
    pg.create_database("test_workloads")
    with pg.connect("test_workloads") as conn:
        workloads.create_sales(conn)
        assert workloads.grow_sales(conn, 0, 2_000) == 2_000
        pg_rows = [tuple(r) for r in conn.execute(AGG).fetchall()]
    con = duckdb.connect()
    workloads.create_sales(con)
    workloads.grow_sales(con, 0, 2_000)
    assert pg_rows == [tuple(r) for r in con.execute(AGG).fetchall()]


def test_time_runs_counts_calls():
    calls = []
    out = workloads.time_runs(lambda: calls.append(1), repeat=4, warmup=2)
    assert len(out) == 4 and len(calls) == 6 and all(s >= 0 for s in out)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("log_scale", (True, False))
def test_figure_for_every_control_value(query, rows, log_scale):
    t = fake_timings()
    t0 = time.perf_counter()
    fig = workloads.latency_figure(t, query=query, rows=rows, log_scale=log_scale)
    assert time.perf_counter() - t0 < 0.1 * 5   # budget is 100 ms; slack for a loaded CI machine
    lines = [tr for tr in fig.data if tr.type == "scatter"]
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert [tr.name for tr in lines] == list(ENGINES) and [tr.name for tr in bars] == list(ENGINES)
    sub = t[t["query"] == query]
    for line, bar in zip(lines, bars, strict=True):
        runs = sub[sub["engine"] == line.name]
        expected = [np.median(runs[runs["rows"] == n]["seconds"]) * 1000 for n in SIZES]
        assert list(line.x) == list(SIZES)
        np.testing.assert_allclose(list(line.y), expected)
        np.testing.assert_allclose(bar.y, [np.median(runs[runs["rows"] == rows]["seconds"]) * 1000])
    assert fig.layout.xaxis.type == ("log" if log_scale else "linear")
    assert f"{rows:,}" in fig.layout.title.text


def test_figure_snaps_to_the_nearest_measured_size_and_survives_missing_data():
    t = fake_timings()
    fig = workloads.latency_figure(t, query="aggregate", rows=12_345)
    assert "10,000 rows" in fig.layout.title.text
    empty = workloads.latency_figure(t, query="no such query", rows=10)
    assert len(empty.data) == 0 and "no data" in empty.layout.title.text
    # an engine not measured at some size draws an empty bar instead of failing
    partial = t[~((t["engine"] == "SQLite") & (t["rows"] == 100_000))]
    fig = workloads.latency_figure(partial, query="aggregate", rows=100_000)
    bar = [tr for tr in fig.data if tr.type == "bar" and tr.name == "SQLite"][0]
    assert np.isnan(bar.y[0])


def test_widget_redraws_for_every_control_value():
    box = latency_widget(fake_timings())
    rows, query, log_scale = box.children[0].children
    for q in QUERIES:
        query.value = q
        for n in SIZES:
            rows.value = n
            for flag in (True, False):
                log_scale.value = flag
                assert box.message.value == ""
                assert f"{q}: {n:,} rows" == box.figure.layout.title.text
                assert len(box.figure.data) == 2 * len(ENGINES)
