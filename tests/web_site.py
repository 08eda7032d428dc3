"""The foreman's page as a foreman meets it: the real daemon, the page's own process (`sitegate web serve`), and a
headless Chromium (Debian's, driven by Debian's chromedriver: nothing is downloaded) sized like a phone."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO
from gate_site import DaemonProcess
from verdict_site import Site

from sitegate.pins import hash_pin

PINS = {"Anna Janssens": "246810", "Marc Dubois": "135790"}
_HASHES = {name: hash_pin(pin) for name, pin in PINS.items()}
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = REPO / ".screenshots" / "web"  # written by the tests, for a reviewer to look at
PHONE = (412, 915)  # CSS pixels of a common phone


class WebSite(Site):
    """A gate (verdict_site.Site) whose configuration also enables the page, with two foremen and a printer."""

    def __init__(self, directory: Path, base_url: str, token_url: str, env: dict | None = None, **options) -> None:
        self.web_options = {"max_failures": 3, "lockout_s": 10, **options.pop("web", {})}
        self.printer = options.pop("printer", True)  # escpos to a file when True; "missing": a folder not there
        self.web: WebProcess | None = None
        super().__init__(directory, base_url, token_url, env, **options)

    @property
    def printer_file(self) -> Path:
        return self.directory / ("no-such-folder" if self.printer == "missing" else "") / "thermal-printer.bin"

    def write(self) -> None:
        super().write()
        text = self.config.read_text(encoding="utf-8")  # a worker may leave within a minute of coming in here
        self.config.write_text(text.replace('source = "fifo"\n', 'source = "fifo"\nsame_badge_window_s = 0\n'))
        foremen = "".join(f'\n[[web.foreman]]\nname = "{name}"\npin_hash = "{_HASHES[name]}"\n' for name in PINS)
        options = "".join(f"{key} = {value}\n" for key, value in self.web_options.items())
        with self.config.open("a", encoding="utf-8") as handle:
            if self.printer:
                handle.write(f'\n[printer]\nformat = "escpos"\nescpos = "file:{self.printer_file}"\n')
            handle.write(f'\n[web]\nenabled = true\nlisten = "127.0.0.1"\nport = 0\n{options}{foremen}')

    def start_web(self) -> str:
        self.web = WebProcess(self.config, self.env)
        return self.web.url

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        super().stop()


class WebProcess(DaemonProcess):
    """`sitegate web serve` as its unit runs it; its URL is read from its "web_ready" line."""

    def __init__(self, config: Path, env: dict | None = None) -> None:
        super().__init__(config, env, args=("web", "serve"), ready_event="web_ready")
        self.wait_ready()
        self.url = next(e["url"] for e in self.lines if e.get("event") == "web_ready").rstrip("/")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill(signal.SIGTERM)


@contextlib.contextmanager
def browser(downloads: Path) -> Iterator:
    """Headless Chromium at a phone's size, through the system chromedriver (Selenium Manager never runs), quit
    afterwards. Its temporary files go to a folder of its own, removed after it: in /tmp it left a profile lock
    folder at every quit (short: a Unix socket's path must fit in 108 bytes)."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        raise AssertionError("Debian's chromium and chromium-driver are needed: `make system-deps`")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={PHONE[0]},{PHONE[1]}",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for console_errors()
    with tempfile.TemporaryDirectory(prefix="sg-chromium-") as scratch:
        service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "TMPDIR": scratch})
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            yield driver
        finally:
            driver.quit()


def screenshot(driver, name: str) -> Path:
    """The whole page, phone-wide, as a PNG under .screenshots/web/ (kept after the run for a reviewer)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(PHONE[0], max(PHONE[1], height + 140))
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(*PHONE)
    return path


NARROW = 360  # CSS pixels: the narrowest phone in common use
NARROW_SHOTS = SCREENSHOTS / "360"  # the README shows copies of these in docs/page/ (a test run leaves git clean)


def narrow(driver, width: int = NARROW, height: int = 780) -> None:
    """The page as a phone of `width` CSS pixels shows it (a mobile viewport, its meta viewport honoured)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def too_wide(driver) -> list[str]:
    """Every element that reaches past the viewport's edges, with its width (details opened first)."""
    return driver.execute_script(
        """
        document.querySelectorAll('details').forEach(d => d.open = true);
        const width = document.documentElement.clientWidth, found = [];
        for (const e of document.querySelectorAll('body *')) {
          const box = e.getBoundingClientRect();
          if (box.width && (box.right > width + 0.5 || box.left < -0.5))
            found.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(box.width)}px `
                       + `(${Math.round(box.left)}..${Math.round(box.right)} of ${width})`);
        }
        if (document.documentElement.scrollWidth > width) found.push(`page ${document.documentElement.scrollWidth}px`);
        return found;
        """
    )


def save_narrow(driver, name: str) -> Path:
    """The whole page at the narrow width, as a PNG under .screenshots/web/360/."""
    NARROW_SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    narrow(driver, NARROW, max(height, 640))
    path = NARROW_SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    narrow(driver)
    return path


# What the page says only in an exempt state (the band's word and the headline), in every language.
EXEMPT_WORDS = re.compile(r"EXEMPT|DISPENS|VRIJGESTELD|VRIJSTELLING")


def signed_in(config: Path, language: str):
    """The page served in this process (WebTest) from the gate's files, a foreman signed in: its forms reach the
    real daemon through its socket, as the page's own process does."""
    import webtest

    from sitegate import config as configuration
    from sitegate.clock import SYSTEM
    from sitegate.web.app import make_app

    page = webtest.TestApp(make_app(configuration.load(config), SYSTEM), extra_environ={"HTTP_HOST": "gate.test"})
    token = re.search(r'name="token" value="([^"]+)"', page.get("/login").text).group(1)
    pin = next(iter(PINS.values()))
    page.post("/login", {"pin": pin, "token": token, "lang": language}, headers={"Origin": "http://gate.test"})
    return page


def signed_in_page(config: Path, language: str, path: str = "/") -> str:
    """The page's HTML as a foreman signed in sees it."""
    return signed_in(config, language).get(path).text


# axe-core and Lighthouse, installed by `make test` from the npm registry into .node/ (tests/web_tools/).
NODE_TOOLS = REPO / ".node" / "node_modules"
AXE = NODE_TOOLS / "axe-core" / "axe.min.js"
LIGHTHOUSE = NODE_TOOLS / "lighthouse" / "cli" / "index.js"
MEASURED = REPO / ".screenshots" / "lighthouse"  # each report's JSON, kept after the run for a reviewer


def installed(tool: Path) -> Path:
    if not tool.is_file():
        raise AssertionError(f"{tool} is missing: `make .node/.complete` installs axe-core and Lighthouse")
    return tool


def axe_violations(driver) -> list[str]:
    """axe-core's violations on the page as it is (its folded parts opened first), every rule it runs by default."""
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")
    driver.execute_script(installed(AXE).read_text(encoding="utf-8"))
    return driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ['violations']}).then(
          found => done(found.violations.map(v => `${v.id} (${v.impact}): ${v.help}: `
                                              + v.nodes.map(n => n.target.join(' ')).join(', '))),
          error => done([`axe did not run: ${error}`]));
        """
    )


def console_errors(driver) -> list[str]:
    """The browser console's errors since the last call, but the document's own HTTP status (a 503 the page
    answers on purpose, with its message in words)."""
    own = f"{driver.current_url.split('?')[0]}"
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
        and not (entry["message"].startswith(own) and "the server responded with a status of" in entry["message"])
    ]


def lighthouse(driver, url: str, name: str) -> dict:
    """Lighthouse (mobile, its default) on `url` in the signed-in browser (its debugging port; the session's
    cookie kept: --disable-storage-reset), accessibility and best practices, no throttling to simulate and no
    screenshot. Run under strace: every address Lighthouse's process connects to is returned, to be checked.
    Returns {"scores": {category: 0..100}, "failed": [audit ids], "requests": [urls], "connects": [addresses],
    "final": the URL measured (a lost session would have ended on the sign-in page)}."""
    host, port = driver.capabilities["goog:chromeOptions"]["debuggerAddress"].rsplit(":", 1)
    MEASURED.mkdir(parents=True, exist_ok=True)
    report, trace = MEASURED / f"{name}.json", MEASURED / f"{name}.connect.txt"
    command = [
        *("strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace)),
        *("node", str(installed(LIGHTHOUSE)), url, f"--port={port}", "--hostname=127.0.0.1"),
        *("--only-categories=accessibility,best-practices,performance", "--throttling-method=provided"),
        *("--disable-storage-reset", "--disable-full-page-screenshot", "--no-enable-error-reporting"),
        *("--output=json", f"--output-path={report}", "--quiet"),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    found = json.loads(report.read_text(encoding="utf-8"))
    assert not found.get("runtimeError"), found["runtimeError"]
    scores = {key: round(category["score"] * 100) for key, category in found["categories"].items()}
    failed = [
        audit_id
        for category in found["categories"].values()
        for ref in category["auditRefs"]
        if ref["weight"] and (audit_id := ref["id"]) and found["audits"][audit_id]["score"] not in (None, 1)
    ]
    requests_made = [item["url"] for item in found["audits"]["network-requests"]["details"]["items"]]
    connects = re.findall(r'inet_(?:addr\("|pton\(AF_INET6, ")([^"]+)"', trace.read_text())
    return {
        "scores": scores,
        "failed": failed,
        "requests": requests_made,
        "connects": connects,
        "final": found["finalDisplayedUrl"],
    }
