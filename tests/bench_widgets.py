"""The widget figure functions and the control values the benchmark sweeps (see bench.py)."""

from __future__ import annotations


def CASES():
    import sqlite3

    import duckdb

    import archlab
    from archlab import explain

    pg = archlab.postgres()
    conn = pg.connect(pg.create_database("bench_explain"))
    archlab.datasets.load_into(conn)
    d = duckdb.connect()
    archlab.datasets.load_into(d)
    s = sqlite3.connect(":memory:")
    archlab.datasets.load_into(s)
    sql = ("SELECT c.country, count(*) FROM orders o JOIN customers c USING (customer_id) "
           "WHERE o.status = 'paid' GROUP BY c.country")
    plans = [explain.postgres_plan(conn, sql), explain.duckdb_plan(d, sql, analyze=True), explain.sqlite_plan(s, sql)]
    cases = [("explain.plan_figure", explain.plan_figure, [{"plan": p} for p in plans])]

    from test_workloads import QUERIES, SIZES, fake_timings  # the timings table shape the notebook measures

    from archlab.workloads import latency_figure

    timings = fake_timings()
    grid = [{"timings": timings, "query": q, "rows": n, "log_scale": log}
            for q in QUERIES for n in SIZES for log in (True, False)]
    cases.append(("workloads.latency_figure", latency_figure, grid))
    return cases
