"""Screenshots of the kedro-viz flowchart for the README (``make viz-screenshots``).

Starts ``kedro viz run`` on 127.0.0.1 in a process group of its own, takes headless Chromium
screenshots of the first view (``__default__``, every box collapsed: kedro_viz_overview.png),
of one source's box opened (its conditions as boxes: kedro_viz_source.png) and of one
condition opened inside its source, with parameters shown and the condition's target-building
node selected and its code shown, the condition's recipe (kedro_viz_condition.png), writes
them to ``docs/``, prints the zoom kedro-viz chose for each, then stops the server *and* its
child process (kedro-viz serves from a child process that outlives its parent when only the
parent is stopped).

    python scripts/viz_screenshots.py [--source synthetic] [--condition human_soft_mode_aligned]

Needs Chromium (Debian: ``apt-get install -y chromium``); ``CHROMIUM`` may name the binary.
"""

from __future__ import annotations

import argparse
import os
import re
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
    " .kui-modal, .sliced-pipeline-notification, .feedback-button { display: none !important; }"
)


def _label(name: str):
    """kedro-viz labels a node by its name, its pretty name ("Human Soft Mode Aligned") or its
    full id ("synthetic.human_soft_mode_aligned")."""
    names = "|".join(map(re.escape, (name, name.replace("_", " "))))
    return re.compile(rf"^(?:[\w.]+\.)?(?:{names})$", re.I)


def screenshot(
    browser: str,
    url: str,
    path: Path,
    size: str,
    open_boxes: tuple[str, ...] = (),
    select: str | None = None,
    show_code: bool = False,
) -> None:
    """Playwright drives the system Chromium (no browser download); ``open_boxes`` are the
    namespace boxes clicked open, outermost first; ``select`` is the node clicked last (kedro-viz
    then highlights what flows into and out of it); ``show_code`` then turns on the side
    panel's "Show Code" (the node function's code, beside the flowchart)."""
    import json

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
        for name in (*open_boxes, select) if select else open_boxes:
            node = page.locator(".pipeline-node", has_text=_label(name)).last
            try:
                node.click(timeout=60_000)
            except Exception as exc:  # a missing box or node is an error: no half-made picture
                chrome.close()
                sys.exit(f"could not click {name!r} in kedro-viz: {type(exc).__name__}")
            page.wait_for_timeout(8000)
        if show_code:
            try:
                page.get_by_text("Show Code", exact=True).click(timeout=60_000)
            except Exception as exc:
                chrome.close()
                sys.exit(f"could not turn on Show Code in kedro-viz: {type(exc).__name__}")
            page.wait_for_timeout(3000)
        page.mouse.move(0, 0)  # no tooltip over the picture
        page.wait_for_timeout(1000)
        zoom = page.get_by_text(re.compile(r"^\d+%$")).first.inner_text()
        page.screenshot(path=str(path))
        chrome.close()
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB, zoom {zoom})")


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
    parser.add_argument("--source", default="synthetic", help="the source box to open")
    parser.add_argument(
        "--condition", default="human_soft_mode_aligned", help="the condition box to open"
    )
    parser.add_argument("--port", type=int, default=4142)
    parser.add_argument("--size", default="1600,1000", help="browser window, width,height")
    parser.add_argument(
        "--source-size", default="2000,1100", help="browser window of the opened source's picture"
    )
    parser.add_argument(
        "--condition-size", default="1600,1500", help="browser window of the condition's picture"
    )
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
        # one source's box opened and focused: its eight conditions as boxes, what each hands
        # out, and the nodes that collect it
        screenshot(
            browser,
            base + f"?pid=__default__&fid={args.source}&expandAllPipelines=false",
            DOCS / "kedro_viz_source.png",
            args.source_size,
            open_boxes=(args.source,),
        )
        # the condition focused (its inputs and outputs only), its source's box and its own box
        # opened, and the condition's target-building node selected, with the parameters and
        # the node's code shown: where the condition's recipe and tables (human label, original
        # label in study_digits, human mode, teacher) enter, and the recipe itself (the
        # condition's builder in soft_label_audit/targets.py) beside the flowchart
        cell = f"{args.source}.{args.condition}"
        screenshot(
            browser,
            base + f"?pid=__default__&fid={cell}&types=nodes,datasets,parameters"
            "&expandAllPipelines=false",
            DOCS / "kedro_viz_condition.png",
            args.condition_size,
            open_boxes=(args.source, cell),
            select=f"build_{args.condition}_targets",
            show_code=True,
        )
    finally:
        stop(server)


if __name__ == "__main__":
    main()
