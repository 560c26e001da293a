"""The engine launchers start real servers on loopback, once per process, and clean up."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest

import archlab
from archlab.engines import EngineError

pg_mod = importlib.import_module("archlab.engines.postgres")


def test_postgres_starts_once_on_loopback_and_answers():
    pg = archlab.postgres()
    assert archlab.postgres() is pg, "one server per kernel"
    with pg.connect() as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert conn.execute("SELECT 1 + 1").fetchone()[0] == 2
    assert pg.startup_seconds < 10     # the budget (2 s) is measured by tests/bench.py, not asserted


def test_postgres_committed_row_survives_a_crash():
    pg = archlab.postgres()
    db = pg.create_database("test_durability")
    with pg.connect(db) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (42)")
    pg.restart(crash=True)             # immediate stop: recovery replays the WAL
    with pg.connect(db) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(42,)]


def test_postgres_separate_connections_are_separate_sessions():
    pg = archlab.postgres()
    with pg.connect() as a, pg.connect() as b:
        assert a.info.backend_pid != b.info.backend_pid


def test_postgres_failure_is_one_clear_sentence(monkeypatch, tmp_path):
    monkeypatch.setattr(pg_mod, "_bin", lambda name: tmp_path / "missing" / name)
    with pytest.raises(EngineError) as e:
        pg_mod.PostgresServer()
    msg = str(e.value)
    assert msg.startswith("PostgreSQL") and "\n" not in msg and msg.endswith((".", ")."))


def test_redis_is_real_and_socket_only():
    server = archlab.redis()
    r = server.client()
    assert r.config_get("port")["port"] == "0", "no TCP port: unix socket only"
    r.flushall()
    r.set("k", "v")
    assert r.get("k") == "v"
    r.get("missing")
    stats = r.info("stats")
    assert stats["keyspace_hits"] >= 1 and stats["keyspace_misses"] >= 1


def test_redis_evicts_under_maxmemory():
    server = archlab.redis()
    r = server.client()
    r.flushall()
    server.configure(maxmemory="2mb", maxmemory_policy="allkeys-lru")
    try:
        for i in range(3000):
            r.set(f"key:{i}", "x" * 1000)
        assert r.info("stats")["evicted_keys"] > 0
        assert r.dbsize() < 3000
    finally:
        server.configure(maxmemory="0")
        r.flushall()


def test_engines_stop_when_the_process_exits():
    code = textwrap.dedent("""
        import archlab
        pg = archlab.postgres(); r = archlab.redis()
        with pg.connect() as c:
            print(c.execute("select pg_backend_pid()").fetchone()[0] and pg.pgdata)
        print(r.client().info("server")["process_id"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    pgdata, redis_pid = out.stdout.split()
    assert not os.path.exists(pgdata), "the temporary data directory is removed"
    assert not os.path.exists(f"/proc/{redis_pid}") or "zombie" in open(f"/proc/{redis_pid}/status").read().lower()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert pgdata not in ps, "no postgres process left for that data directory"


def test_postgres_moves_to_another_port_if_its_port_was_taken(monkeypatch):
    import socket

    from archlab.engines import base

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real = base.free_port
    monkeypatch.setattr(pg_mod, "free_port", lambda: next(ports, None) or real())
    try:
        server = pg_mod.PostgresServer()
        assert server.port != taken.getsockname()[1]
        with server.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.stop()
    finally:
        taken.close()


def test_postgres_runs_its_own_programs_as_the_server_user():
    pg = archlab.postgres()
    assert pg.run_tool("pg_dump", "--version").startswith("pg_dump (PostgreSQL) 18")
    (pg.root / "dumps").mkdir(exist_ok=True)
    out = pg.own(pg.root / "dumps") / "all.sql"        # the server's user writes the dump
    pg.run_tool("pg_dumpall", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-f", out)
    assert "PostgreSQL database cluster dump" in out.read_text()
    with pytest.raises(EngineError) as e:
        pg.run_tool("pg_dump", "--no-such-option")
    assert str(e.value).startswith("PostgreSQL did not run pg_dump") and "\n" not in str(e.value)
