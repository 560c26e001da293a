"""Binder rehearsal: do what repo2docker does with binder/, then run every learner notebook the
way a Binder user's JupyterLab would.

    make binder-rehearsal        (or: .venv/bin/python tests/binder_rehearsal.py)

1. Copy the repository into a temporary folder: the files git tracks plus untracked files that
   are not ignored (so .venv, build output and course state do not leak in; uncommitted work
   that is not ignored does, so it can be rehearsed before committing).
2. A new virtual environment with the Python of binder/runtime.txt (found as pythonX.Y on PATH,
   or $BINDER_PYTHON), then `pip install -r binder/requirements.txt` and binder/postBuild run
   in the copy with the environment's bin/ first on PATH, as repo2docker does. Only binder/ is
   used: repo2docker ignores pyproject.toml and the root once binder/ exists.
3. `jupyter lab --ip 127.0.0.1 --no-browser` with a token, started in the copy's root (Binder's
   working directory) with a fresh HOME, and nothing that points at the development checkout
   (no ARCHLAB_DATASETS): the notebooks must find everything from where Binder puts them.
4. For every notebooks/*.ipynb: a session through the server's REST API (so the server picks the
   kernel and its working directory, as when a learner opens the notebook), then every code cell
   executed in that kernel in order (every cell, also after an error). Allowed errors: those of
   the unsolved exercise stubs (expected_learner_error). The kernels run with the offline guard (tests/offline.py).

This lives in tests/ rather than binder/ because it is a test: binder/ holds only what
repo2docker reads. Exit status 0 when every notebook ran; otherwise each problem is printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from jupyter_client import BlockingKernelClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import offline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOKEN = "archlab-binder-rehearsal"


def copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def runtime_python() -> str:
    want = (REPO / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    exe = os.environ.get("BINDER_PYTHON") or shutil.which(f"python{want}")
    if not exe:
        sys.exit(f"binder/runtime.txt asks for Python {want}: install python{want} or set BINDER_PYTHON")
    got = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                         text=True, check=True).stdout.strip()
    if got != want:
        sys.exit(f"{exe} is Python {got}, binder/runtime.txt asks for {want}")
    return exe


def step(title: str, args, **kw) -> None:
    print(f"--- {title}: {' '.join(map(str, args))}", flush=True)
    t0 = time.monotonic()
    subprocess.run(args, check=True, **kw)
    print(f"    {time.monotonic() - t0:.0f} s", flush=True)


def expected_learner_error(ename: str, stub_raised_before: bool) -> bool:
    """Errors a learner edition shows before its exercises are solved: the stubs' own
    NotImplementedError (in test cells and in demo cells built on the learner's code),
    archlab.exercises.ExerciseNotDone (a demo cell saying which exercise it needs), and a
    NameError for a result such a demo cell did not produce. Shared with tests/test_browser.py."""
    return ename in ("NotImplementedError", "ExerciseNotDone") or (ename == "NameError" and stub_raised_before)


def api(base: str, path: str, method: str = "GET", body=None):
    req = urllib.request.Request(f"{base}{path}", method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = r.read()
    return json.loads(data) if data else None


def run_notebook(base: str, runtime: Path, repo: Path, env_dir: Path, rel: str) -> tuple[list[str], float]:
    """Execute one notebook in a kernel the server starts for it; return problems and seconds."""
    nb = nbformat.read(repo / rel, as_version=4)
    session = api(base, "/api/sessions", "POST", {"path": rel, "type": "notebook", "name": Path(rel).name,
                                                   "kernel": {"name": "python3"}})
    kid = session["kernel"]["id"]
    problems: list[str] = []
    kc = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kid}.json"))
    kc.load_connection_file()
    kc.start_channels()
    log_start = offline.log_size()
    t0 = time.monotonic()
    try:
        kc.wait_for_ready(timeout=120)
        probe_out: list[str] = []
        kc.execute_interactive("import os, sys; print(sys.executable, '%d.%d' % sys.version_info[:2], "
                                       "os.getcwd())", store_history=False, timeout=60,
                                       output_hook=lambda m: probe_out.append(m["content"].get("text", "")))
        exe, version, cwd = "".join(probe_out).split()
        if not exe.startswith(str(env_dir)) or cwd != str((repo / rel).parent):
            problems.append(f"{rel}: the kernel is {exe} in {cwd}, not the Binder environment's Python "
                            f"in {(repo / rel).parent}")
        counts, stub_raised = {}, False
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            reply = kc.execute_interactive(cell.source, timeout=300, output_hook=lambda m: None)
            content = reply["content"]
            counts[content.get("execution_count")] = i
            if content["status"] == "error":
                if not expected_learner_error(content["ename"], stub_raised):
                    problems.append(f"{rel}, cell {i}: {content['ename']}: {content['evalue'][:300]}")
                stub_raised = stub_raised or content["ename"] == "NotImplementedError"
        for e in offline.attempts(since=log_start):
            if "host" in e:
                problems.append(offline.describe(e, rel, counts.get(e.get("count"), "?")))
    finally:
        seconds = time.monotonic() - t0
        kc.stop_channels()
        api(base, f"/api/sessions/{session['id']}", "DELETE")
    return problems, seconds


def main() -> int:
    t_all = time.monotonic()
    python = runtime_python()
    work = Path(tempfile.mkdtemp(prefix="binder-rehearsal-"))
    work.chmod(0o755)   # as root, PostgreSQL runs as an unprivileged user who must reach the env's binaries
    repo, env_dir, home = work / "repo", work / "env", work / "home"
    for d in (repo, home):
        d.mkdir()
    try:
        copy_repo(repo)
        step("clean venv", [python, "-m", "venv", env_dir])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHLAB_", "VIRTUAL_ENV", "PYTHON"))}
        env.update(PATH=f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}", HOME=str(home),
                   VIRTUAL_ENV=str(env_dir), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
        env.update(offline.kernel_env(work / "offline"))
        os.environ[offline.LOG_ENV] = env[offline.LOG_ENV]
        step("install binder/requirements.txt", [env_dir / "bin" / "python", "-m", "pip", "install", "--quiet",
                                                 "--disable-pip-version-check", "-r", "binder/requirements.txt"],
             cwd=repo, env=env)
        step("binder/postBuild", [repo / "binder" / "postBuild"], cwd=repo, env=env)

        port = _free_port()
        args = [env_dir / "bin" / "jupyter", "lab", "--ip", "127.0.0.1", f"--port={port}", "--no-browser",
                f"--IdentityProvider.token={TOKEN}", "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            args.append("--allow-root")   # Binder's user is not root; this machine's may be
        log = open(work / "jupyter.log", "w")
        server = subprocess.Popen(args, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        problems, timings = [], []
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    api(base, "/api/status")
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print((work / "jupyter.log").read_text())
                        return 1
                    time.sleep(0.5)
            for nb in sorted((repo / "notebooks").glob("*.ipynb")):
                rel = str(nb.relative_to(repo))
                found, seconds = run_notebook(base, work / "runtime", repo, env_dir, rel)
                problems += found
                timings.append((rel, seconds))
                print(f"--- {rel}: {seconds:.1f} s{'' if not found else ', ' + str(len(found)) + ' problem(s)'}",
                      flush=True)
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
            log.close()
        print(f"Binder rehearsal: {len(timings)} notebooks, {time.monotonic() - t_all:.0f} s in all")
        if problems:
            print("FAILED:\n" + "\n".join(problems))
            return 1
        print("OK")
        return 0
    finally:
        if os.environ.get("KEEP_REHEARSAL"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
