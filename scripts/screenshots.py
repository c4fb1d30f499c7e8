"""Screenshots for the README: the serve page, report.html and `sentiment explain` in a terminal.

    python scripts/screenshots.py --model runs/imdb --out docs/img

Needs Debian's chromium (/usr/bin/chromium) and playwright. Starts `sentiment serve` on a free loopback port,
types a review into the page, and photographs the answer; opens the model's report.html from disk; renders
`sentiment explain` through rich's SVG export and photographs that too.
"""

from __future__ import annotations

import argparse
import io
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Chromium flags for a sandboxed machine with no network: no sandbox (root), no GPU, no background
# connections (refused here, many at a time). tests/test_browser.py launches with the same flags.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REVIEW = (
    "A gripping, beautifully shot film. The plot drags in the middle and the dialogue is clumsy at times, "
    "but the lead performance is superb and the ending is unforgettable."
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminal_svg(model: Path) -> str:
    """`sentiment explain` as a terminal would show it, exported by rich as SVG."""
    from rich.console import Console

    from sentiment import report
    from sentiment.explain import explain
    from sentiment.predictor import Predictor

    console = Console(
        record=True, width=100, file=io.StringIO(), force_terminal=True, color_system="truecolor"
    )
    original = report._console
    report._console = lambda: console  # the same printing code, recorded instead of shown
    try:
        report.print_explanations(explain(Predictor.load(model), [REVIEW]), top=6)
    finally:
        report._console = original
    return console.export_svg(title=f'sentiment explain "{REVIEW[:40]}..."')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sentiment", "serve", "--model", str(args.model), "--port", str(port)]
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(url)
            page.fill("#text", REVIEW)
            page.click("#go")
            page.wait_for_selector("#result:not([hidden])")
            page.screenshot(path=str(args.out / "serve_page.png"), full_page=True)

            page = browser.new_page(viewport={"width": 1100, "height": 1500})
            page.goto((args.model / "report.html").resolve().as_uri())
            page.screenshot(path=str(args.out / "report_top.png"))
            first = page.locator(".mistake").first
            if first.count():
                first.screenshot(path=str(args.out / "report_mistake.png"))

            svg = args.out / "explain_terminal.svg"
            svg.write_text(terminal_svg(args.model), encoding="utf-8")
            page = browser.new_page(viewport={"width": 1000, "height": 400})
            page.goto(svg.resolve().as_uri())
            page.locator("svg").screenshot(path=str(args.out / "explain_terminal.png"))
            svg.unlink()
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    for png in sorted(args.out.glob("*.png")):
        print(png)


if __name__ == "__main__":
    main()
