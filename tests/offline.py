"""Offline guard: a notebook run by the tests may connect to loopback only.

One module, two sides:

* kernel side: `install(log)` replaces socket.connect / connect_ex / create_connection /
  getaddrinfo with versions that, for any host outside loopback, append a line to `log` (host,
  port, the IPython execution count, the kernel's cwd and the notebook path Jupyter gives it)
  and raise OfflineError. Kernels load it from an IPython startup file that `kernel_env()` writes
  into a private IPYTHONDIR, so every kernel started with that environment is guarded (nbclient,
  nbgrader's Validator and autograde, a JupyterLab server and its kernels).
* test side: `patch_nbclient()` checks the log after every cell nbclient (or nbconvert/nbgrader,
  which build on it) executes and raises "notebook X, cell N tried to connect to host:port";
  `attempts()` + `describe()` turn the log into the same messages where no nbclient ran (the
  browser test, the Binder rehearsal, and as a last check after every test in conftest.py).

Only the standard library is imported at the top: kernels of other environments import this file.
Not covered: connections made by C libraries without Python's socket module (libpq, libzmq) or by
subprocesses.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

LOG_ENV = "ARCHLAB_OFFLINE_LOG"


class OfflineError(ConnectionRefusedError):
    """A notebook tried to reach a host outside loopback."""


def is_loopback(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]").split("%")[0].lower()
    if host in ("", "localhost", "localhost.localdomain", "ip6-localhost", "::1", "0.0.0.0", "::"):
        return True
    if host.startswith("::ffff:"):
        host = host[7:]
    return host.startswith("127.") and host.replace(".", "").isdigit()


# ---------------------------------------------------------------- kernel side

def install(log: str | os.PathLike) -> None:
    """Guard this process's sockets; attempts beyond loopback are logged to `log` and raise."""
    log = str(log)
    if getattr(socket, "_archlab_offline", None) == log:
        return
    cls = socket.socket
    orig_connect, orig_connect_ex = cls.connect, cls.connect_ex
    orig_getaddrinfo, orig_create = socket.getaddrinfo, socket.create_connection

    def refuse(host, port):
        count = None
        try:
            ip = get_ipython()  # noqa: F821 - defined inside IPython kernels
            count = ip.execution_count
        except Exception:
            pass
        entry = {"host": str(host), "port": port, "count": count, "cwd": os.getcwd(),
                 "session": os.environ.get("JPY_SESSION_NAME", "")}
        with open(log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        raise OfflineError(f"offline: tried to connect to {host}:{port} (only loopback is allowed here)")

    def check(sock_family, address):
        if sock_family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
            if not is_loopback(address[0]):
                refuse(address[0], address[1] if len(address) > 1 else None)

    def connect(self, address):
        check(self.family, address)
        return orig_connect(self, address)

    def connect_ex(self, address):
        check(self.family, address)
        return orig_connect_ex(self, address)

    def getaddrinfo(host, port, *args, **kwargs):
        if not is_loopback(host):
            refuse(host, port)
        return orig_getaddrinfo(host, port, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        if not is_loopback(address[0]):
            refuse(address[0], address[1])
        return orig_create(address, *args, **kwargs)

    cls.connect, cls.connect_ex = connect, connect_ex
    socket.getaddrinfo, socket.create_connection = getaddrinfo, create_connection
    socket._archlab_offline = log


def kernel_env(root: Path) -> dict[str, str]:
    """Environment variables that guard every IPython kernel started with them: a private
    IPYTHONDIR under `root` whose startup file installs this module, and the log it writes."""
    root = Path(root)
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    log = root / "offline.log"
    log.touch()
    (startup / "00-offline.py").write_text(
        "import importlib.util as _u, os as _os\n"
        f"_s = _u.spec_from_file_location('archlab_offline_guard', {str(Path(__file__).resolve())!r})\n"
        "_m = _u.module_from_spec(_s); _s.loader.exec_module(_m)\n"
        f"_m.install(_os.environ.get({LOG_ENV!r}) or {str(log)!r})\n"
        "del _u, _os, _s, _m\n")
    return {"IPYTHONDIR": str(root / "ipython"), LOG_ENV: str(log)}


# ---------------------------------------------------------------- test side

def log_size(log=None) -> int:
    log = log or os.environ.get(LOG_ENV)
    return os.path.getsize(log) if log and os.path.exists(log) else 0


def attempts(log=None, since: int = 0) -> list[dict]:
    """Entries written since byte offset `since`."""
    log = log or os.environ.get(LOG_ENV)
    if not log or not os.path.exists(log):
        return []
    with open(log) as f:
        f.seek(since)
        return [json.loads(line) for line in f if line.strip()]


def describe(entry: dict, notebook: str | None = None, cell: int | str | None = None) -> str:
    if "resolved" in entry:
        return entry["resolved"]
    notebook = notebook or entry.get("session") or f"(a notebook run in {entry.get('cwd')})"
    cell = cell if cell is not None else f"with execution count [{entry.get('count')}]"
    return f"notebook {notebook}, cell {cell} tried to connect to {entry['host']}:{entry['port']}"


def _notebook_name(client) -> str:
    meta = (client.resources or {}).get("metadata", {})
    if meta.get("name"):
        return str(meta["name"])
    title = ""
    for c in client.nb.cells:
        if c.cell_type == "markdown" and c.source.strip():
            title = c.source.strip().splitlines()[0].lstrip("# ").strip()
            break
    return f"{title!r} (run in {meta.get('path') or os.getcwd()})"


def patch_nbclient() -> None:
    """Make every cell that nbclient executes fail with the notebook and cell that went offline."""
    from nbclient import NotebookClient

    if getattr(NotebookClient.async_execute_cell, "_offline", False):
        return
    original = NotebookClient.async_execute_cell

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        start = log_size()
        try:
            return await original(self, cell, cell_index, *args, **kwargs)
        finally:
            found = [e for e in attempts(since=start) if "host" in e]
            if found:
                messages = [describe(e, _notebook_name(self), cell_index) for e in found]
                with open(os.environ[LOG_ENV], "a") as f:
                    for m in messages:
                        f.write(json.dumps({"resolved": m}) + "\n")
                raise OfflineError("\n".join(messages))

    async_execute_cell._offline = True
    NotebookClient.async_execute_cell = async_execute_cell


def problems(since: int = 0, log=None) -> list[str]:
    """What went offline since `since`: resolved messages where nbclient named the cell, else
    what the kernel logged."""
    found = attempts(log, since)
    resolved = [e["resolved"] for e in found if "resolved" in e]
    return resolved or [describe(e) for e in found if "host" in e]
