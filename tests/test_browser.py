"""What a learner sees: JupyterLab in a real browser (Debian's Chromium driven by Playwright).

`make browser-test` runs this file (not part of `make test`). One JupyterLab server on a free
127.0.0.1 port with a token serves a temporary folder holding a copy of notebooks/ and the
instructor edition of every week (built from course/source, as `autograder build` does), plus a
private copy of the nbgrader course directory for the formgrader. For each notebook the test
runs all cells through JupyterLab's own "Run All Cells" command, then checks in the DOM:

* no cell raised, except what a learner edition's unsolved stubs raise (expected_learner_error
  in tests/binder_rehearsal.py); in the copy every code cell of a learner edition carries the
  "raises-exception" tag, so Run All goes on past those errors instead of stopping at the first;
* every widget output rendered: no "Error displaying widget", ipywidgets controls present, a
  plotly figure drawn (.js-plotly-plot with traces); every static plotly figure drawn too;
* changing one control of every widget (a slider if it has one, else a dropdown, toggle or
  checkbox) redraws its figure;
* no kernel connection beyond loopback (tests/offline.py).

A failure names the notebook, the cell index (0-based, as in the .ipynb) and what was missing.
Screenshots (each notebook's first screen and every figure output after the run) and the time
to run all cells go to $BROWSER_SCREENSHOTS (default: build/browser-screenshots/).
Then the nbgrader extensions: the Assignments list and the Formgrader open without errors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from archlab.engines.base import free_port
from autograder.build import lint
from autograder.course import find_course
from autograder.source import write_notebook

from . import offline
from .binder_rehearsal import expected_learner_error
from .conftest import REPO

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", REPO / "build" / "browser-screenshots"))
TOKEN = "archlab-browser-test"
RUN_TIMEOUT = 300          # seconds for "Run All Cells" on one notebook
CONTROLS = ".widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-checkbox, .widget-text"


def _notebooks() -> list[tuple[str, str]]:
    """(label, path in the lab folder): every learner notebook, and every week's instructor edition."""
    course = find_course(REPO)
    out = [(p.stem, f"notebooks/{p.name}") for p in sorted((REPO / "notebooks").glob("*.ipynb"))]
    for aid in _weeks(course):
        out.append((f"{aid} (instructor)", f"instructor/{aid}.ipynb"))
    return out


def _weeks(course) -> list[str]:
    """Assignments that have a learner notebook in notebooks/ (others may be work in progress)."""
    return [aid for aid in course.assignment_ids() if (REPO / "notebooks" / f"{aid}.ipynb").exists()]


NOTEBOOKS = _notebooks()


def _prepare(root: Path) -> None:
    course = find_course(REPO)
    (root / "notebooks").mkdir()
    (root / "instructor").mkdir()
    (root / "course" / "source").mkdir(parents=True)
    (root / "exchange").mkdir()
    for p in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        for cell in nb.cells:   # Run All would stop at the first NotImplementedError of an unsolved stub
            if cell.cell_type == "code":
                cell.metadata.setdefault("tags", []).append("raises-exception")
        nbformat.write(nb, root / "notebooks" / p.name)
    for aid, nb in lint(course, _weeks(course)).items():
        write_notebook(nb, root / "instructor" / f"{aid}.ipynb")
        shutil.copytree(course.source / aid, root / "course" / "source" / aid,
                        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
        write_notebook(nb, root / "course" / "source" / aid / f"{aid}.ipynb")
    cfg = (course.root / "nbgrader_config.py").read_text()
    (root / "course" / "nbgrader_config.py").write_text(cfg + f"\nc.Exchange.root = {str(root / 'exchange')!r}\n")
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell attached to the DOM, so off-screen figures render and can be inspected
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    (root / "settings" / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (root / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) "
                    "or run `make browser-test` as root", pytrace=False)
    root = tmp_path_factory.mktemp("lab")
    _prepare(root)
    port = free_port()
    args = [str(REPO / ".venv" / "bin" / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={root / 'settings'}",
            f"--LabApp.workspaces_dir={root / 'workspaces'}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    # PATH as in an activated venv: nbgrader's gradebook runs the `alembic` command
    env = {**os.environ, "ARCHLAB_DATASETS": str(REPO / "datasets"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = open(root / "jupyter.log", "w")
    # the server's working directory is the course copy: nbgrader's formgrader reads its config there
    proc = subprocess.Popen(args, cwd=root / "course", env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, (root / "jupyter.log").read_text()
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            # a new, empty --user-data-dir (Playwright's way of passing it)
            browser = pw.chromium.launch_persistent_context(
                str(root / "chromium"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000})
            page = browser.new_page()
            page.goto(f"{base}/lab?token={TOKEN}&reset")
            page.wait_for_function("window.jupyterapp && window.jupyterapp.started", timeout=90_000)
            page.evaluate("() => window.jupyterapp.restored")
            page.evaluate(CLOSE_JS)
            SHOTS.mkdir(parents=True, exist_ok=True)
            yield page, root
            browser.close()
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


CLOSE_JS = """() => { window.__closeNotebook = async () => {   // discard changes, stop the kernel, close the tab
  const w = window.__nb; window.__nb = null;
  if (!w || w.isDisposed) return;
  w.context.model.dirty = false;
  await w.sessionContext.shutdown().catch(() => {});
  w.dispose();
}; }"""

OPEN_JS = """async (path) => {
  const app = window.jupyterapp;
  await window.__closeNotebook();
  const w = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await w.context.ready; await w.sessionContext.ready;
  app.shell.activateById(w.id);
  window.__nb = w;
  return w.sessionContext.session.kernel.name;
}"""

RUN_JS = """async () => {
  const w = window.__nb;
  await window.jupyterapp.commands.execute('notebook:run-all-cells');
  return w.content.widgets.length;
}"""

IDLE_JS = """() => {
  const w = window.__nb, k = w.sessionContext.session && w.sessionContext.session.kernel;
  const busy = w.content.widgets.some(c => c.model.type === 'code' && c.promptNode
                                         && c.promptNode.textContent.includes('*'));
  return !!k && k.status === 'idle' && !busy;
}"""

# one entry per cell: its outputs (type, mime, error) and what the DOM shows for each output
CELLS_JS = """() => window.__nb.content.widgets.map((c, i) => {
  c.node.setAttribute('data-archlab-cell', String(i));
  if (c.model.type !== 'code') return {i, type: c.model.type};
  const children = Array.from(c.node.querySelectorAll('.jp-OutputArea-child'));
  const outs = c.model.outputs.toJSON().map((o, k) => {
    const node = children[k];
    if (node) node.setAttribute('data-archlab-output', i + ':' + k);
    const data = o.data || {};
    return {
      type: o.output_type, ename: o.ename || '', evalue: (o.evalue || '').slice(0, 300),
      widget: 'application/vnd.jupyter.widget-view+json' in data,
      plotly: 'application/vnd.plotly.v1+json' in data,
      errorText: !!node && node.textContent.includes('Error displaying widget'),
      controls: node ? node.querySelectorAll(%(controls)r).length : 0,
      progress: node ? node.querySelectorAll('.widget-hprogress, .widget-vprogress').length : 0,
      plots: node ? node.querySelectorAll('.js-plotly-plot .main-svg').length : 0,
      traces: node ? node.querySelectorAll('.js-plotly-plot g.trace').length : 0,
    };
  });
  return {i, type: 'code', count: c.model.executionCount, nbgrader: c.model.getMetadata('nbgrader') || {},
          outs};
})""".replace("%(controls)r", json.dumps(CONTROLS))

PLOT_STATE_JS = """(sel) => Array.from(document.querySelector(sel).querySelectorAll('.js-plotly-plot .main-svg'))
  .map(s => s.innerHTML).join('')"""


def _wait_idle(page, timeout):
    deadline = time.monotonic() + timeout
    stable = 0
    while time.monotonic() < deadline:
        stable = stable + 1 if page.evaluate(IDLE_JS) else 0
        if stable >= 3:
            return True
        time.sleep(0.5)
    return False


def _change_one_control(page, out_sel) -> str:
    """Change the first control of the widget (a slider preferred); return what was changed."""
    box = page.locator(out_sel)
    slider = box.locator(".widget-slider .noUi-handle")
    if slider.count():
        handle = slider.first
        at_min = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemin")
        handle.focus()                          # a slider at its minimum can only move right
        for _ in range(2):
            page.keyboard.press("ArrowRight" if at_min else "ArrowLeft")
        return "slider"
    select = box.locator(".widget-dropdown select")
    if select.count():
        options = select.first.locator("option").all_inner_texts()
        current = select.first.evaluate("s => s.selectedIndex")
        select.first.select_option(index=(current + 1) % len(options))
        return "dropdown"
    toggles = box.locator(".widget-toggle-buttons button:not(.mod-active)")
    if toggles.count():
        toggles.first.click()
        return "toggle button"
    check = box.locator(".widget-checkbox input")
    if check.count():
        check.first.click()
        return "checkbox"
    return ""


@pytest.mark.parametrize("label,path", NOTEBOOKS, ids=[n for n, _ in NOTEBOOKS])
def test_notebook_renders_and_its_widgets_respond(lab, label, path):
    page, root = lab
    learner = path.startswith("notebooks/")
    log_start = offline.log_size()
    page.evaluate(OPEN_JS, path)
    assert _wait_idle(page, 60), f"{label}: the kernel did not become idle after opening"
    t0 = time.monotonic()
    page.evaluate(RUN_JS)
    finished = _wait_idle(page, RUN_TIMEOUT)
    elapsed = time.monotonic() - t0
    assert finished, f"{label}: Run All Cells did not finish within {RUN_TIMEOUT} s"
    problems = []

    # widgets and figures render asynchronously after the kernel is idle
    deadline = time.monotonic() + 30
    while True:
        cells = page.evaluate(CELLS_JS)
        pending = [(c["i"], o) for c in cells for o in c.get("outs", [])
                   if (o["widget"] or o["plotly"])
                   and not (o["errorText"] or o["progress"] or (o["plots"] and o["traces"]))]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)

    stub_raised = False
    for c in cells:
        if c["type"] != "code":
            continue
        i = c["i"]
        for o in c["outs"]:
            if o["type"] == "error":
                if not (learner and expected_learner_error(o["ename"], stub_raised)):
                    problems.append(f"{label}, cell {i}: raised {o['ename']}: {o['evalue']}")
                stub_raised = stub_raised or o["ename"] == "NotImplementedError"
            if o["widget"]:
                if o["errorText"]:
                    problems.append(f"{label}, cell {i}: 'Error displaying widget' instead of the widget")
                    continue
                if o["progress"] and not o["plots"]:      # archlab.progress's bar: drawn is enough
                    continue
                if not o["controls"]:
                    problems.append(f"{label}, cell {i}: widget output has no ipywidgets controls")
                if not (o["plots"] and o["traces"]):
                    problems.append(f"{label}, cell {i}: widget output has no plotly figure drawn "
                                    f"({o['plots']} plot, {o['traces']} traces)")
            elif o["plotly"] and not (o["plots"] and o["traces"]):
                problems.append(f"{label}, cell {i}: plotly figure output was not drawn")

    # screenshots: the first screen, then every figure output
    stem = path.replace("/", "--").removesuffix(".ipynb")
    page.evaluate("""() => { window.__nb.content.activeCellIndex = 0; window.__nb.content.scrollToItem(0);
                            document.querySelectorAll('.jp-WindowedPanel-outer').forEach(n => n.scrollTop = 0); }""")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{stem}.png"))
    for c in cells:
        for k, o in enumerate(c.get("outs", [])):
            if o["widget"] or o["plotly"]:
                sel = f'[data-archlab-output="{c["i"]}:{k}"]'
                page.locator(sel).scroll_into_view_if_needed()
                page.locator(sel).screenshot(path=str(SHOTS / f"{stem}--cell{c['i']:03d}.png"))

    # every widget answers a change of one of its controls by redrawing its figure
    for c in cells:
        for k, o in enumerate(c.get("outs", [])):
            if not (o["widget"] and o["controls"] and o["plots"]):
                continue
            sel = f'[data-archlab-output="{c["i"]}:{k}"]'
            page.locator(sel).scroll_into_view_if_needed()
            before = page.evaluate(PLOT_STATE_JS, sel)
            what = _change_one_control(page, sel)
            if not what:
                problems.append(f"{label}, cell {c['i']}: found no slider, dropdown, toggle or checkbox to change")
                continue
            deadline, after = time.monotonic() + 20, before
            while after == before and time.monotonic() < deadline:
                time.sleep(0.3)
                after = page.evaluate(PLOT_STATE_JS, sel)
            if after == before:
                problems.append(f"{label}, cell {c['i']}: changing the {what} did not redraw the figure within 20 s")
            else:
                page.locator(sel).screenshot(path=str(SHOTS / f"{stem}--cell{c['i']:03d}-changed.png"))

    # offline guard: map the kernel's execution count back to the cell
    by_count = {c.get("count"): c["i"] for c in cells if c.get("count")}
    for e in offline.attempts(since=log_start):
        if "host" in e:
            problems.append(offline.describe(e, label, by_count.get(e.get("count"), "?")))
            with open(os.environ[offline.LOG_ENV], "a") as f:   # reported here, not again by conftest
                f.write(json.dumps({"resolved": problems[-1]}) + "\n")

    with open(SHOTS / "timings.txt", "a") as f:
        f.write(f"{label}\t{elapsed:.1f} s\n")
    print(f"{label}: run all cells {elapsed:.1f} s")
    assert not problems, "\n".join(problems)


def test_nbgrader_extensions_are_enabled_and_open(lab):
    """The nbgrader menu's Assignments (learners) and Formgrader (instructors) open without errors."""
    page, root = lab
    page.evaluate("() => window.__closeNotebook()")
    commands = page.evaluate("() => window.jupyterapp.commands.listCommands()")
    for cmd in ("nbgrader:open-assignment-list", "nbgrader:open-formgrader"):
        assert cmd in commands, f"the nbgrader lab extension's command {cmd} is missing"
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert "Nbgrader" in menus, f"no Nbgrader menu in the menu bar: {menus}"

    page.evaluate("() => window.jupyterapp.commands.execute('nbgrader:open-assignment-list')")
    panel = page.locator(".nbgrader-AssignmentList, #nbgrader-assignment-list, .jp-NbgraderAssignmentList").first
    panel.wait_for(timeout=30_000)
    page.wait_for_timeout(2000)
    text = panel.inner_text()
    page.screenshot(path=str(SHOTS / "nbgrader-assignment-list.png"))
    assert "Released assignments" in text, f"the assignment list did not load: {text[:500]!r}"
    assert "error" not in text.lower(), f"the assignment list shows an error: {text[:500]!r}"

    page.evaluate("() => window.jupyterapp.commands.execute('nbgrader:open-formgrader')")
    frame_el = page.locator("iframe[src*='formgrader']").first
    frame_el.wait_for(timeout=30_000)
    frame = frame_el.content_frame
    aid = next(p.name for p in sorted((root / "course" / "source").iterdir()))
    frame.get_by_text(aid).first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "nbgrader-formgrader.png"))
    body = frame.locator("body").inner_text()
    assert "Manage Assignments" in body, f"the formgrader did not open its assignment page: {body[:500]!r}"
