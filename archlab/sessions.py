"""Several PostgreSQL sessions driven step by step, where a step may block on another's lock.

Each session runs in its own thread, so a statement that waits for a lock does not stop the
script: the step is reported as blocked, the next steps (of the other sessions) run, and the
blocked statement completes when the lock holder commits or rolls back.

    with Interleaving(pg, "week03", ("T1", "T2")) as run:
        steps = run.script([("T1", "BEGIN"), ("T1", "UPDATE t SET v = 1 WHERE id = 1"),
                            ("T2", "BEGIN"), ("T2", "UPDATE t SET v = 2 WHERE id = 1"),   # blocks
                            ("T1", "COMMIT"), ("T2", "COMMIT")])
    run.table()        # one row per step: session, statement, result, whether it blocked

A step counts as blocked only when PostgreSQL says so (`pg_blocking_pids` is not empty), never
because it is slow, so the outcome does not depend on the speed of the machine.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field


class SessionError(RuntimeError):
    """A script could not be driven (e.g. a step sent to a session that is still blocked)."""


@dataclass
class Step:
    """One statement of one session and what became of it."""

    n: int
    session: str
    sql: str
    status: str = "running"          # running | blocked | ok | error
    rows: list | None = None         # result rows of a query
    message: str = ""                # PostgreSQL's command tag ("UPDATE 1", "COMMIT", "ROLLBACK")
    error: str = ""                  # first line of the error message
    sqlstate: str = ""               # e.g. 40001 (serialization failure), 40P01 (deadlock)
    blocked: bool = False            # it had to wait for a lock
    unblocked_by: int | None = None  # number of the step after which it finished
    future: Future = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def result(self) -> str:
        if self.status == "error":
            return f"ERROR {self.sqlstate}: {self.error}"
        if self.status in ("running", "blocked"):
            return "… waiting for a lock"
        if self.rows is not None:
            return ", ".join(str(r[0] if len(r) == 1 else tuple(r)) for r in self.rows) or "(no rows)"
        return self.message


class Session:
    """One PostgreSQL session (autocommit connection: BEGIN/COMMIT are sent as SQL) served by
    its own thread, so that `submit` returns at once even when the statement blocks."""

    def __init__(self, pg, dbname: str, name: str):
        self.name = name
        self.conn = pg.connect(dbname, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=f"session-{name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            sql, params, fut = job
            try:
                cur = self.conn.execute(sql, params)
                rows = [tuple(r) for r in cur.fetchall()] if cur.description is not None else None
                fut.set_result((rows, cur.statusmessage or ""))
            except Exception as e:  # the error is the result (40001, 40P01, 23505...)
                fut.set_exception(e)

    def submit(self, sql: str, params=None) -> Future:
        fut: Future = Future()
        self._jobs.put((sql, params, fut))
        return fut

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)
        try:
            self.conn.close()
        except Exception:
            pass


class Interleaving:
    """Sessions named `names` on database `dbname`, and a script runner that interleaves them.

    timeout: seconds a step may run without finishing or being blocked before SessionError.
    """

    def __init__(self, pg, dbname: str, names=("T1", "T2"), timeout: float = 10.0):
        self.timeout = timeout
        self.monitor = pg.connect(dbname, autocommit=True)
        self.sessions = {n: Session(pg, dbname, n) for n in names}
        self.steps: list[Step] = []

    # -- running -------------------------------------------------------------------
    def step(self, session: str, sql: str, params=None) -> Step:
        """Run one statement in `session`; return once it finished or PostgreSQL reports it
        waiting for a lock. Statements blocked earlier are given the chance to finish."""
        if session not in self.sessions:
            raise SessionError(f"No session {session!r}: this interleaving has {', '.join(self.sessions)}.")
        if any(s.session == session and s.status == "blocked" for s in self.steps):
            raise SessionError(f"{session} is still waiting for a lock: it cannot run {sql!r} yet.")
        st = Step(n=len(self.steps) + 1, session=session, sql=sql)
        st.future = self.sessions[session].submit(sql, params)
        self.steps.append(st)
        self._settle(st)
        blocked = [s for s in self.steps if s.status == "blocked"]
        if len(blocked) == len(self.sessions):   # everyone waits: a deadlock, PostgreSQL ends it
            self._wait_any(blocked)
        for other in self.steps[:-1]:
            if other.status == "blocked":
                self._settle(other)
                if other.status != "blocked":
                    other.unblocked_by = st.n
        return st

    def script(self, steps) -> list[Step]:
        """Run (session, sql) pairs in order; then wait for any step still blocked."""
        out = [self.step(session, sql) for session, sql in steps]
        self.finish()
        return out

    def finish(self) -> None:
        """Wait for blocked steps (a deadlock ends with an error after deadlock_timeout)."""
        for st in self.steps:
            if st.status == "blocked":
                self._wait(st, stop_if_blocked=False)

    def _wait_any(self, steps: list[Step]) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(s.future.done() for s in steps):
            if time.monotonic() > deadline:
                raise SessionError(f"Every session waits for a lock for more than {self.timeout} s.")
            time.sleep(0.01)
        for s in steps:
            self._settle(s)
            if s.status != "blocked" and s is not self.steps[-1]:
                s.unblocked_by = self.steps[-1].n

    def _settle(self, st: Step) -> None:
        self._wait(st, stop_if_blocked=True)

    def _wait(self, st: Step, stop_if_blocked: bool) -> None:
        deadline = time.monotonic() + self.timeout
        pid = self.sessions[st.session].pid
        delay = 0.001
        while True:
            try:
                rows, message = st.future.result(timeout=delay)
                st.rows, st.message, st.status = rows, message, "ok"
                return
            except TimeoutError:
                pass
            except Exception as e:
                st.status = "error"
                st.sqlstate = getattr(e, "sqlstate", "") or ""
                st.error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                return
            if self._waiting_for_lock(pid):
                st.blocked = True
                if stop_if_blocked:
                    st.status = "blocked"
                    return
            if time.monotonic() > deadline:
                raise SessionError(f"{st.session}: {st.sql!r} neither finished nor waited for a lock "
                                   f"within {self.timeout} s.")
            delay = min(delay * 2, 0.02)

    def _waiting_for_lock(self, pid: int) -> bool:
        return bool(self.monitor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", (pid,)).fetchone()[0])

    # -- reporting and clean-up --------------------------------------------------------
    def table(self):
        """The steps as a DataFrame: what each session ran and what it saw."""
        import pandas as pd

        return pd.DataFrame([{"step": s.n, "session": s.session, "statement": s.sql, "result": s.result,
                              "blocked": (f"yes, until step {s.unblocked_by}" if s.unblocked_by else
                                          "yes" if s.blocked else "")} for s in self.steps]).set_index("step")

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.monitor.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_script(pg, dbname: str, steps, names=None, timeout: float = 10.0) -> Interleaving:
    """Run a whole script in fresh sessions and close them; the returned object keeps `.steps`
    and `.table()` for inspection."""
    names = names or tuple(dict.fromkeys(s for s, _ in steps))
    with Interleaving(pg, dbname, names, timeout=timeout) as run:
        run.script(steps)
    return run
