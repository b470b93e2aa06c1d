"""The HTML report (`snakemake --report`) as a page in a real browser: Debian's headless Chromium,
driven over the DevTools protocol on a pipe (no extra packages). The page must load without a
script error, stay self-contained (no request leaves the file), and show every figure the
dataset registers, each with its caption. Screenshots go to results/browser/ (CI keeps
results/): report.png is the sampled-outcomes figure with its caption.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SNAKEMAKE
from cvgen.plan import build_plan, load_config
from cvgen.report import FIGURES, figures_for

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "results" / "browser"
WINDOW = (1400, 1000)  # a laptop screen: the report's side panel plus a 750 px figure

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's headless Chromium at /usr/bin/chromium (apt-get install -y "
        "chromium; .ci/run installs it when root)",
    ),
]


class Chromium:
    """Headless Chromium with one page, driven over --remote-debugging-pipe: commands go to the
    browser's fd 3, replies and events come back on its fd 4, each a JSON text ended by NUL."""

    def __init__(self, profile: Path, log: Path):
        commands, self._to_browser = os.pipe()
        self._from_browser, replies = os.pipe()
        # above fds 3 and 4, so that bash can put them there in either order
        commands, replies = (_above(fd, 10) for fd in (commands, replies))
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "about:blank",
        ]
        with open(log, "w") as stderr:
            self.process = subprocess.Popen(
                ["bash", "-c", f'exec "$@" 3<&{commands} 4>&{replies}', "bash", CHROMIUM, *flags],
                pass_fds=(commands, replies),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        os.close(commands)
        os.close(replies)
        self._buffer, self._last_id, self.events = b"", 0, []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", self.session)
        width, height = WINDOW
        self.send(
            "Emulation.setDeviceMetricsOverride",
            self.session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Run one protocol command and return its result (events on the way are kept)."""
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def _read(self, timeout: float = 60) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], timeout)
            if not ready:
                raise TimeoutError("Chromium sent nothing for 60 s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> None:
        """Load `url` and wait until the report's app has rendered its menu."""
        self.send("Page.navigate", self.session, url=url)
        self.wait_for("document.readyState === 'complete' && !!document.querySelector('#app a')")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"!!({condition})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never showed: {condition}")
            time.sleep(0.05)

    def click(self, text: str, within: str = "#app") -> None:
        """Click the link whose visible text is `text`, as a user would."""
        found = self.evaluate(
            f"""(() => {{
                const link = [...document.querySelectorAll({json.dumps(within + " a")})]
                    .find(a => a.innerText.trim() === {json.dumps(text)});
                if (link) link.click();
                return !!link;
            }})()"""
        )
        assert found, f"no link {text!r} on the page"

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.send("Page.captureScreenshot", self.session, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def problems(self) -> list[str]:
        """Script errors: uncaught exceptions, console errors, the browser's error log."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', details).get('description')}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(f"console.{params['type']}: {params['args']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']}")
        return found

    def requests(self) -> list[str]:
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=20)
        except (OSError, EOFError, TimeoutError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def _above(fd: int, lowest: int) -> int:
    """`fd` moved to the lowest free number >= `lowest`."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The default dataset (smaller), its report and its HTML page, built as `make run` does."""
    workdir = tmp_path_factory.mktemp("browser")
    config = load_config(ROOT / "config.yaml")
    config.update(samples_per_circuit=2048, shard_size=512)
    (workdir / "my.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [SNAKEMAKE, "-s", ROOT / "Snakefile", "--directory", workdir, "--configfile"]
    command += [workdir / "my.yaml", "--cores", "2", "--report", "results/demo/report.html"]
    result = subprocess.run(
        [*command, "--report-after-run"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "results/demo", build_plan(config)


@pytest.fixture(scope="module")
def browser(built, tmp_path_factory):
    folder = tmp_path_factory.mktemp("chromium")
    chromium = Chromium(folder / "profile", folder / "chromium.log")
    try:
        chromium.open((built[0] / "report.html").as_uri())
        yield chromium
    finally:
        chromium.close()


def caption_text(name: str) -> str:
    """A figure's caption as the page shows it: the .rst without markup, spaces collapsed."""
    text = (ROOT / "workflow/report" / f"{name}.rst").read_text().replace("``", "")
    return " ".join(text.split())


def test_report_page_loads_without_script_errors(built, browser):
    results, plan = built
    menu = browser.evaluate("document.querySelector('#app').innerText")
    categories = sorted({FIGURES[name] for name in figures_for(plan)})
    for entry in ("Workflow", "Statistics", *categories):
        assert entry in menu
    loading = "getComputedStyle(document.querySelector('#loading-screen')).display"
    assert browser.evaluate(loading) == "none"
    assert browser.problems() == []
    # self-contained: the page and what it embeds, nothing fetched from elsewhere
    outside = [url for url in browser.requests() if not url.startswith(("file:", "data:"))]
    assert outside == []


def test_report_registers_exactly_the_datasets_figures(built, browser):
    results, plan = built
    registered = browser.evaluate("Object.keys(results)")
    assert sorted(registered) == sorted(
        f"results/demo/report/{name}.png" for name in figures_for(plan)
    )
    assert "Expectation values" in browser.evaluate("Object.keys(categories)")


def test_report_shows_every_figure_with_its_caption(built, browser):
    results, plan = built
    for name in figures_for(plan):
        path = f"results/demo/report/{name}.png"
        browser.open((results / "report.html").as_uri())
        browser.click(FIGURES[name])
        rows = "[...document.querySelectorAll('#app tbody tr')]"
        row = f"{rows}.find(r => r.innerText.trim() === {json.dumps(path)})"
        browser.wait_for(row)
        browser.evaluate(f"{row}.querySelectorAll('a')[0].click()")  # the eye: show the figure
        image = "[...document.images].find(i => i.src.startsWith('data:image/png'))"
        browser.wait_for(f"{image} && {image}.complete && {image}.naturalWidth > 0")
        shown = browser.evaluate(
            f"(() => {{ const i = {image}; const box = i.getBoundingClientRect();"
            "return {src: i.src, width: i.naturalWidth, shown: box.width, top: box.top}; })()"
        )
        png = (results / "report" / f"{name}.png").read_bytes()
        assert base64.b64decode(shown["src"].split("base64,", 1)[1]) == png, name
        assert shown["shown"] == shown["width"] > 300, name  # at its own size, not shrunk
        browser.evaluate(f"{row}.querySelectorAll('a')[1].click()")  # (i): the caption
        browser.wait_for("document.body.innerText.includes('DESCRIPTION')")
        page = " ".join(browser.evaluate("document.querySelector('#app').innerText").split())
        assert caption_text(name) in page, name
        assert path in page
        browser.screenshot(SCREENSHOTS / f"{name}.png")
        if name == "sampling":
            browser.screenshot(SCREENSHOTS / "report.png")
    assert browser.problems() == []
