"""archlab.sessions on a real PostgreSQL server: steps that block are reported as blocked and
finish when the lock holder ends its transaction; errors keep their SQLSTATE."""

from __future__ import annotations

import pytest

import archlab
from archlab.sessions import Interleaving, SessionError, run_script


@pytest.fixture(scope="module")
def db():
    pg = archlab.postgres()
    name = pg.create_database("test_sessions")
    return pg, name


@pytest.fixture()
def table(db):
    pg, name = db
    with pg.connect(name) as c:
        c.execute("DROP TABLE IF EXISTS t")
        c.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO t VALUES (1, 10), (2, 20)")
    return db


def test_a_write_blocks_until_the_holder_commits(table):
    pg, name = table
    run = run_script(pg, name, [
        ("T1", "BEGIN"), ("T1", "UPDATE t SET v = 11 WHERE id = 1"),
        ("T2", "BEGIN"), ("T2", "UPDATE t SET v = 12 WHERE id = 1"),
        ("T1", "SELECT v FROM t WHERE id = 1"),
        ("T1", "COMMIT"), ("T2", "COMMIT"), ("T1", "SELECT v FROM t ORDER BY id")])
    s = run.steps
    assert s[3].blocked and s[3].unblocked_by == 6 and s[3].ok and s[3].message == "UPDATE 1"
    assert s[4].rows == [(11,)] and not s[4].blocked
    assert s[-1].rows == [(12,), (20,)]
    assert "until step 6" in run.table().loc[4, "blocked"]


def test_repeatable_read_reports_40001_after_the_wait(table):
    pg, name = table
    run = run_script(pg, name, [
        ("T1", "BEGIN ISOLATION LEVEL REPEATABLE READ"), ("T2", "BEGIN ISOLATION LEVEL REPEATABLE READ"),
        ("T1", "SELECT v FROM t WHERE id = 1"), ("T2", "SELECT v FROM t WHERE id = 1"),
        ("T1", "UPDATE t SET v = 11 WHERE id = 1"), ("T2", "UPDATE t SET v = 11 WHERE id = 1"),
        ("T1", "COMMIT"), ("T2", "COMMIT")])
    upd = run.steps[5]
    assert upd.blocked and upd.status == "error" and upd.sqlstate == "40001"
    assert run.steps[7].ok and run.steps[7].message == "ROLLBACK"   # COMMIT of a failed transaction
    assert upd.result.startswith("ERROR 40001")


def test_no_step_is_blocked_without_a_lock_wait(table):
    pg, name = table
    run = run_script(pg, name, [("T1", "SELECT pg_sleep(0.05)"), ("T2", "SELECT 1")])
    assert [s.blocked for s in run.steps] == [False, False] and run.steps[1].rows == [(1,)]


def test_a_deadlock_ends_in_40P01(table):
    pg, name = table
    run = run_script(pg, name, [
        ("T1", "BEGIN"), ("T2", "BEGIN"),
        ("T1", "UPDATE t SET v = 0 WHERE id = 1"), ("T2", "UPDATE t SET v = 0 WHERE id = 2"),
        ("T1", "UPDATE t SET v = 0 WHERE id = 2"), ("T2", "UPDATE t SET v = 0 WHERE id = 1"),
        ("T1", "ROLLBACK"), ("T2", "ROLLBACK")])
    codes = sorted(s.sqlstate for s in run.steps[4:6])
    assert codes == ["", "40P01"]


def test_a_blocked_session_cannot_take_another_step(table):
    pg, name = table
    with Interleaving(pg, name) as run:
        run.step("T1", "BEGIN")
        run.step("T1", "LOCK TABLE t")
        assert run.step("T2", "SELECT * FROM t").status == "blocked"
        with pytest.raises(SessionError, match="still waiting"):
            run.step("T2", "SELECT 1")
        run.step("T1", "ROLLBACK")
        assert run.steps[2].ok and run.steps[2].unblocked_by == 4
        with pytest.raises(SessionError, match="No session"):
            run.step("T3", "SELECT 1")
