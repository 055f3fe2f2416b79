"""`edge hil run --report DIR` on shipped scenarios and on a deliberately failing one, the
page then opened in a real headless browser (Debian's chromium, driven over its DevTools
protocol on a pipe): it loads with no console error, every image decodes to a picture,
text from the scenario files arrives as text (never as markup), and a failed run shows
the tick its own definition gives for the failure."""

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from edge.cli import main
from hil.cli import SHIPPED

pytest.importorskip("matplotlib")

HOSTILE_NAME = "<img src=x onerror=alert(1)>.yaml"     # a file name is text of a file too
HOSTILE_TEXT = '<script>document.title = "owned"</script>'


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (./dev test installs Debian's `chromium`)")
    return exe


class Chromium:
    """Headless chromium over --remote-debugging-pipe: it reads DevTools commands on its
    fd 3 and writes replies and events on fd 4, each message JSON ending in a NUL."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()

        def fds() -> None:           # via fresh copies: either end may already be 3 or 4
            reads, writes = os.dup(to_child), os.dup(from_child)
            os.dup2(reads, 3)
            os.dup2(writes, 4)
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed its DevTools pipe")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(self._next(deadline))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (TimeoutError, EOFError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def open_page(exe: str, page: Path, profile: Path) -> tuple[dict, list[str]]:
    """Load `page`; what the page shows (images, scripts, text, title) and every console
    error, uncaught exception or failed load the browser reported."""
    browser = Chromium(exe, profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": page.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        shown = browser.call("Runtime.evaluate", {"returnByValue": True, "expression": """
            JSON.stringify({
              images: Array.from(document.images).map(i => ({
                src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth,
                height: i.naturalHeight})),
              scripts: document.querySelectorAll('script').length,
              injected: document.querySelectorAll('section img[onerror], img[src=x]').length,
              title: document.title,
              text: document.body.innerText,
              sections: Array.from(document.querySelectorAll('section')).map(s => ({
                id: s.id, heading: s.querySelector('h2').innerText, text: s.innerText,
                images: Array.from(s.querySelectorAll('img')).map(
                  i => i.getAttribute('src'))}))})"""}, session=session)
        errors = []
        for e in browser.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                errors.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(f"console.error: {p.get('args')}")
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return json.loads(shown["result"]["value"]), errors
    finally:
        browser.close()


def failing_variant(directory: Path) -> Path:
    """collision_link3 hit with 5 N·m, a third of the observer's threshold on joint 2 (15
    N·m): no stop. The file's own timeline puts the hit at tick 600 and asserts a latch
    within 10 ticks of it (fails at 610) and at the end of 1.2 s (the last tick, 1199)."""
    text = (SHIPPED / "collision_link3.yaml").read_text()
    for old, new in (
            ("torque_nm: [30.0, 60.0]", "torque_nm: [5.0]"),
            ("name: collision_link3", "name: collision_small"),
            ("description: collision on link 3 during a move -> stop latched within 10 ticks, "
             "category 1", f"description: '{HOSTILE_TEXT}'"),
            ("  qd2: {state: qd.2}", "  qd2: {state: qd.2}\n  q2: {state: q.2}\n"
             "  tau2: {state: tau.2}\n  x: {tcp: x}\n  y: {tcp: y}\n  z: {tcp: z}"),
            ("overrides: {program: null, acquisition: null}",
             "overrides:\n  program: null\n  acquisition: null\n  safety:\n    walls:\n"
             "      - {name: floor, plane: {normal: [0, 0, 1], offset: 0.0}}\n"
             "      - {name: cage, keep_out: {lo: [0.9, 0.9, 0.0], hi: [1.2, 1.2, 0.5]}}")):
        assert old in text, old
        text = text.replace(old, new, 1)
    path = directory / HOSTILE_NAME
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One campaign: three shipped scenarios (one records no joints) and the failing one."""
    root = tmp_path_factory.mktemp("report")
    scenario = failing_variant(root)
    out = root / "out"
    code = main(["hil", "run", "collision_link3", "wall_approach", "logic_interlock",
                 str(scenario), "--jobs", "2", "--report", str(out)])
    return code, out, scenario


def test_the_page_loads_without_errors_and_every_image_renders(report, tmp_path):
    code, out, _ = report
    assert code == 3                             # one run failed: the campaign failed
    page = out / "index.html"
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    shown, errors = open_page(_chromium(), page, tmp_path / "profile")
    assert errors == []
    srcs = sorted(unquote(i["src"]) for i in shown["images"])
    assert srcs == pngs and len(pngs) >= 10      # every image on disk is on the page, once
    for image in shown["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    # 2 sweeps of collision_link3, wall_approach, logic_interlock, the variant
    assert [s["heading"].split()[0] for s in shown["sections"]] == [
        "collision_link3[torque_nm=30]", "collision_link3[torque_nm=60]", "wall_approach",
        "logic_interlock", "collision_small[torque_nm=5]"]


def test_plots_only_for_what_a_scenario_recorded(report, tmp_path):
    _, out, _ = report
    shown, _ = open_page(_chromium(), out / "index.html", tmp_path / "profile")
    by_run = {s["heading"].split()[0]: [Path(i).name for i in s["images"]]
              for s in shown["sections"]}
    # logic_interlock records no joint and no TCP: neither plot; its door is a bus topic
    assert by_run["logic_interlock"] == ["assertions.png", "safety.png", "bus.png"]
    # wall_approach records the TCP, no joint
    assert by_run["wall_approach"] == ["assertions.png", "tcp.png", "safety.png"]
    # collision_link3 records qd.2
    assert by_run["collision_link3[torque_nm=30]"] == ["assertions.png", "joints.png",
                                                       "safety.png"]
    assert by_run["collision_small[torque_nm=5]"] == ["assertions.png", "joints.png",
                                                      "tcp.png", "safety.png"]


def test_text_from_files_is_escaped_and_a_failure_shows_its_tick(report, tmp_path):
    _, out, scenario = report
    html = (out / "index.html").read_text()
    assert HOSTILE_TEXT not in html and "<img src=x" not in html
    shown, errors = open_page(_chromium(), out / "index.html", tmp_path / "profile")
    assert errors == []
    assert shown["scripts"] == 0 and shown["injected"] == 0
    assert shown["title"] == "edge hil run report"        # the description's script never ran
    failed = shown["sections"][-1]
    assert HOSTILE_TEXT in failed["text"] and str(scenario) in failed["text"]
    assert "fail" in failed["heading"]
    rows = [line for line in failed["text"].splitlines() if "\tFAIL\t" in line]
    lines = scenario.read_text().splitlines()
    window = next(i + 1 for i, t in enumerate(lines)     # `- after: hit` + `within: 10 ticks`
                  if t.strip() == "- after: hit" and "10 ticks" in lines[i + 1])
    at_end = next(i + 1 for i, t in enumerate(lines) if t.strip().startswith("- at_end:"))
    assert [r.split("\t")[0].rpartition(":")[2] for r in rows] == [str(window), str(at_end)]
    assert [r.split("\t")[2] for r in rows] == ["610", "1199"]
    assert "latched = FALSE" in rows[0]


def test_a_missing_matplotlib_is_one_line_naming_the_extra(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('blocked by the test')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    done = subprocess.run([sys.executable, "-m", "edge.cli", "hil", "run", "watchdog_stall",
                           "--report", str(tmp_path / "out")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "edge: error: --report draws its plots with matplotlib, which is not installed: "
        "pip install 'edge[hil]'"]
    assert not (tmp_path / "out").exists()


def test_message_rates_of_a_topic_the_timeline_publishes(tmp_path, capsys):
    """Five messages published by the file's own steps, 100 ticks apart: the `messages`
    signal counts them (0 before the first is delivered, 5 at the end) and the report
    draws their rate."""
    steps = "".join(f"  - at: {t}\n    publish: {{topic: io/door, data: {{closed: false}}}}\n"
                    for t in (100, 200, 300, 400, 500))
    path = tmp_path / "door.yaml"
    path.write_text(
        "name: door_messages\nboard: sim_arm\noverrides: {program: null, acquisition: null}\n"
        "duration: 600\nsignals:\n  n: {messages: io/door}\n"
        f"steps:\n{steps}"
        "assert:\n  - never: n > 5\n  - at_end: n = 5\n  - eventually: n = 0\n"
        "    within: 100 ticks\n")
    out = tmp_path / "out"
    assert main(["hil", "run", str(path), "--report", str(out)]) == 0, capsys.readouterr().out
    assert sorted(p.name for p in (out / "000-door_messages").iterdir()) == [
        "assertions.png", "rates.png"]
    shown, errors = open_page(_chromium(), out / "index.html", tmp_path / "profile")
    assert errors == [] and all(i["width"] > 0 for i in shown["images"])


def test_a_bad_messages_topic_names_its_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nboard: sim_arm\nduration: 10\nsignals:\n"
                    "  n: {messages: 'io/+'}\nassert:\n  - always: n = 0\n")
    assert main(["hil", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}:5" in err[0] and "messages" in err[0], err


def test_a_run_that_could_not_be_carried_out_shows_its_error_escaped(tmp_path):
    from hil.report_page import write_report
    from hil.runner import RunResult

    error = "x.yaml:3: board <b>gone</b> & more"
    page = write_report([RunResult("broken", "broken", "x.yaml", 0, {}, 0, error=error)],
                        tmp_path)
    shown, errors = open_page(_chromium(), page, tmp_path / "profile")
    assert errors == [] and shown["images"] == []
    assert f"the run could not be carried out: {error}" in shown["sections"][0]["text"]
    assert "<b>" not in page.read_text()
