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

    from archlab.storage_costs import tiering_figure  # the corners and middle of every slider's range

    grid = [{"size_gb": gb, "months": mo, "reads0": r, "half_life": h, "min_duration": md, "retrieval_fees": rf}
            for gb in (1, 1e3, 1e6) for mo in (1, 36, 120) for r in (1e-4, 2, 100) for h in (0.5, 60)
            for md in (True, False) for rf in (True, False)]
    cases.append(("storage_costs.tiering_figure", tiering_figure, grid))

    from archlab.bloom import fp_figure, measure

    measured = measure(lambda m, k: _ReferenceBloom(m, k), [(m, n, k) for m in (4096, 16384) for n in (500, 2000)
                                                            for k in (1, 4, 8)], queries=1000)
    grid = [{"m": m, "n": n, "k": k, "measured": measured} for m in (1024, 16384, 1 << 20) for n in (100, 2000, 100_000)
            for k in (1, 6, 16)]
    cases.append(("bloom.fp_figure", fp_figure, grid))

    from sim_election import scenario

    from archlab.timeline import timeline_figure

    sim = scenario(1)
    grid = [{"trace": sim.trace, "ids": sim.ids, "start": s, "width": w, "messages": m}
            for s in (0, 1000, 2900) for w in (None, 100, 3000) for m in (True, False)]
    cases.append(("timeline.timeline_figure", timeline_figure, grid))

    from test_ratelimit import LIMITERS

    from archlab.ratelimit import bursty_arrivals, limit_figure

    arrivals = bursty_arrivals()
    grid = [{"arrivals": arrivals, "algorithm": a, "rate": r, "burst": b, "window": w, "limiters": LIMITERS}
            for a in LIMITERS for r in (0.5, 30) for b in (1, 50) for w in (0.25, 10)]
    cases.append(("ratelimit.limit_figure", limit_figure, grid))

    from test_serialization import AVRO, DDIA_PROTO

    from archlab import rpc
    from archlab.serialization import payload_figure

    person = rpc.compile_proto(DDIA_PROTO, "ddia")[0].Person
    grid = [{"records": n, "name_len": nl, "digits": d, "interests": i, "person_cls": person, "avro_schema": AVRO}
            for n in (1, 100, 1000) for nl in (0, 64) for d in (0, 18) for i in (0, 10)]
    cases.append(("serialization.payload_figure", payload_figure, grid))

    from archlab.caching import hit_curve_figure, hit_curve_table

    table = hit_curve_table(alphas=(0.6, 1.2), sizes=(10, 100, 800), n_objects=1000, n_requests=3000)
    grid = [{"alpha": a, "cache_size": c, "policies": p, "table": table, "n_objects": 1000}
            for a in (0.0, 0.6, 1.2, 5.0) for c in (1, 100, 10_000)
            for p in ((), ("OPT",), tuple(sorted(set(table["policy"]))))]
    cases.append(("caching.hit_curve_figure", hit_curve_figure, grid))

    from archlab.messaging import fanout_figure

    grid = [{"n": n, "p_slow": p, "hedge_ms": d} for n in (1, 100, 1000) for p in (0.0, 0.01, 0.1)
            for d in (0.0, 21.0, 200.0)]
    cases.append(("messaging.fanout_figure", fanout_figure, grid))

    from archlab.architecture import chain_figure

    grid = [{"hops": h, "fanout": f, "availability": a, "median_ms": m, "sigma": s, "percentile": p}
            for h in (1, 20) for f in (1, 100) for a in (0.9, 1.0) for m in (0.1, 100.0)
            for s in (0.0, 2.0) for p in (50.0, 99.9)]
    cases.append(("architecture.chain_figure", chain_figure, grid))

    from test_hashing import NODES, VNODES, make_rings

    from archlab.hashing import ring_figure

    rings = make_rings()
    grid = [{"rings": rings, "nodes": n, "vnodes": v} for n in NODES for v in VNODES]
    cases.append(("hashing.ring_figure", ring_figure, grid))
    return cases


class _ReferenceBloom:
    """A filter for feeding the benchmark's measured points (the notebook's graded one is not importable)."""

    def __init__(self, m, k):
        self.m, self.k, self.bits = m, k, bytearray(m)

    def _pos(self, item):
        h = hash(str(item))
        return [(h + i * (1 + (h >> 20) % (self.m - 1))) % self.m for i in range(self.k)]

    def add(self, item):
        for p in self._pos(item):
            self.bits[p] = 1

    def __contains__(self, item):
        return all(self.bits[p] for p in self._pos(item))
