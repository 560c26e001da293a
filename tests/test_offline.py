"""The offline guard (tests/offline.py) fails a notebook that leaves loopback, naming the
notebook, the cell and the destination, and lets loopback through. 203.0.113.1 is TEST-NET-3
(never routed); the guard refuses before any packet is sent."""

from __future__ import annotations

import socket
import threading

import nbformat
import pytest
from nbclient import NotebookClient

from . import offline


def _notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Offline probe")] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


@pytest.fixture
def private_log(tmp_path, monkeypatch):
    """A log of its own, so the expected attempts do not trip the suite-wide check."""
    for name, value in offline.kernel_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path / "offline.log"


def _run(nb, tmp_path):
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()


@pytest.mark.parametrize("code", [
    "import socket\nsocket.create_connection(('203.0.113.1', 9), timeout=1)",
    # caught by the notebook: still a failure, found in the kernel's log
    "import socket\ntry:\n    socket.socket().connect(('203.0.113.1', 9))\nexcept OSError:\n    pass",
])
def test_a_connection_beyond_loopback_names_notebook_cell_and_destination(code, tmp_path, private_log):
    with pytest.raises(offline.OfflineError,
                       match=r"notebook 'Offline probe' \(run in .*\), cell 2 tried to connect to 203\.0\.113\.1:9"):
        _run(_notebook("x = 1", code), tmp_path)
    assert [e["host"] for e in offline.attempts(private_log) if "host" in e] == ["203.0.113.1"]


def test_a_name_lookup_beyond_loopback_is_refused_before_any_query(tmp_path, private_log):
    with pytest.raises(offline.OfflineError, match=r"cell 1 tried to connect to example\.org:443"):
        _run(_notebook("import urllib.request\nurllib.request.urlopen('https://example.org/', timeout=1)"),
             tmp_path)


def test_loopback_is_allowed(tmp_path, private_log):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept()[0].sendall(b"hello"), daemon=True).start()
    nb = _notebook(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
                   "assert s.recv(5) == b'hello'",
                   f"socket.create_connection(('localhost', {port}), timeout=5).close()\n"
                   "socket.getaddrinfo('localhost', 80)")
    try:
        _run(nb, tmp_path)
    finally:
        server.close()
    assert offline.attempts(private_log) == []
