"""Screenshots of the kedro-viz flowchart for the README (``make viz-screenshots``).

Starts ``kedro viz run`` on 127.0.0.1 in a process group of its own, takes headless Chromium
screenshots of the overview (every source collapsed into its box) and of one source
focused, writes them to ``docs/``, then stops the server *and* its child process (kedro-viz
serves from a child process that outlives its parent when only the parent is stopped).

    python scripts/viz_screenshots.py [--source mnist] [--port 4142]

Needs Chromium (Debian: ``apt-get install -y chromium``); ``CHROMIUM`` may name the binary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("Chromium not found: install it (Debian: apt-get install -y chromium) or set CHROMIUM")


def wait_for(url: str, timeout: float, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"kedro viz stopped early (exit {server.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    sys.exit(f"kedro viz did not answer {url} within {timeout:.0f} s")


#: kedro-viz remembers its settings in localStorage: no feature tour, layers shown, pretty names
SETTINGS = {
    "showFeatureHints": False,
    "layers": True,
    "textLabels": True,
    "prettyName": True,
    "visible": {"sidebar": True, "miniMap": False, "code": False, "metadata": False},
}
#: the new-release banner and hint pop-ups cover the flowchart in a fresh browser profile
HIDE = (
    "[class*='update-reminder'], [class*='feature-hint'], [class*='feature-tour'],"
    " .kui-modal { display: none !important; }"
)


def screenshot(
    browser: str, url: str, path: Path, size: str, open_boxes: tuple[str, ...] = ()
) -> None:
    """Playwright drives the system Chromium (no browser download); ``open_boxes`` are the
    namespace boxes clicked open, outermost first."""
    import json
    import re

    from playwright.sync_api import sync_playwright

    width, height = (int(v) for v in size.split(","))
    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=browser, args=list(CHROMIUM_FLAGS[1:]))
        page = chrome.new_page(viewport={"width": width, "height": height})
        page.add_init_script(
            f"window.localStorage.setItem('KedroViz', {json.dumps(json.dumps(SETTINGS))})"
        )
        page.goto(url, timeout=300_000)
        page.wait_for_selector(".pipeline-node", timeout=300_000)
        page.add_style_tag(content=HIDE)
        page.wait_for_timeout(4000)  # the layout animates into place
        for box in open_boxes:
            # labels are pretty names ("Human Soft Mode Aligned") or the ids themselves
            label = re.compile("|".join(map(re.escape, (box, box.replace("_", " ")))), re.I)
            try:
                page.locator(".pipeline-node", has_text=label).last.click(timeout=60_000)
            except Exception as exc:  # keep the view reached so far
                print(f"could not open the box {box!r}: {type(exc).__name__}")
                break
            page.wait_for_timeout(8000)
        page.screenshot(path=str(path))
        chrome.close()
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


def stop(server: subprocess.Popen) -> None:
    """Stop the whole process group: the kedro viz command and the server child it started."""
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the group may outlive its leader: make sure no member is left
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="mnist", help="the source box to focus")
    parser.add_argument("--port", type=int, default=4142)
    parser.add_argument("--size", default="1600,1000", help="browser window, width,height")
    args = parser.parse_args()

    browser = chromium()
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [str(kedro), "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(args.port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so stop() reaches the server child too
    )
    base = f"http://127.0.0.1:{args.port}/"
    try:
        wait_for(base + "api/main", 600, server)
        DOCS.mkdir(exist_ok=True)
        screenshot(
            browser,
            base + "?pid=__default__&expandAllPipelines=false",
            DOCS / "kedro_viz_overview.png",
            args.size,
        )
        # focusing a nested box by URL (fid) focuses its outer box: one source, its inputs
        # and the tables its conditions hand to reporting
        screenshot(
            browser,
            base + f"?pid=__default__&fid={args.source}&expandAllPipelines=false",
            DOCS / "kedro_viz_source.png",
            args.size,
        )
    finally:
        stop(server)


if __name__ == "__main__":
    main()
