"""The serve page and report.html in a real browser: Debian's chromium driven by playwright.

Skipped where chromium or playwright is missing (`.ci/run` installs chromium with apt-get).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import load_script
from test_explain import MARKER, marked_model  # noqa: F401  (a fixture: a model with a marker word)
from test_serve import start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]
ARGS = load_script("screenshots").ARGS  # the README screenshots' chromium flags


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def test_the_page_classifies_and_colours_the_words(browser, marked_model: Path) -> None:  # noqa: F811
    proc, url = start_server(marked_model)
    try:
        page = browser.new_page()
        page.goto(url)
        assert "labels negative, positive" in page.locator("#about").inner_text(timeout=10000)
        text = f"The film was {MARKER}, and the plot was awful."
        page.fill("#text", text)
        page.click("#go")
        page.wait_for_selector("#result:not([hidden])", timeout=10000)
        assert page.locator("#words").inner_text() == text  # the original text, words wrapped in spans
        words = page.locator("#words span.word")
        shown = [float(words.nth(i).get_attribute("data-weight")) for i in range(words.count())]
        label = page.locator("#label").inner_text()
        server = json.loads(
            page.evaluate(
                "async (t) => JSON.stringify(await (await fetch('/explain', {method: 'POST', "
                "headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text: t})})).json())",
                text,
            )
        )["explanations"][0]
        assert label == server["label"]
        assert shown == pytest.approx([t["weight"] for t in server["explanation"]["tokens"]])
        # the marker pushes positive: green (toward) when positive is the label, red when it is not
        marker = page.locator("#words span.word", has_text=MARKER)
        background = marker.evaluate("el => getComputedStyle(el).backgroundColor")
        red, green, _ = map(int, background.removeprefix("rgb(").removesuffix(")").split(","))
        assert (green > red) == (label == "positive")
        bars = page.locator("#bars .bar")
        assert bars.count() == 2 and {bars.nth(i).get_attribute("data-label") for i in range(2)} == {
            "negative",
            "positive",
        }
        # a bad request is shown as the server's message, not a crash
        page.fill("#text", "   ")
        page.click("#go")
        assert "Type a text first" in page.locator("#error").inner_text()
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_report_renders_offline(browser, trained_model: Path) -> None:
    page = browser.new_page()
    page.route("http*://**", lambda route: route.abort())  # offline: anything fetched would fail
    page.goto((trained_model / "report.html").resolve().as_uri())
    assert page.locator("h1").inner_text().startswith("sentiment report")
    metrics = json.loads((trained_model / "metrics.json").read_text())
    accuracy = page.locator("table.metrics tr", has_text="accuracy").locator("td").nth(1).inner_text()
    assert accuracy == f"{metrics['test']['accuracy']:.4f}"
    images = page.locator(".plots img")
    assert images.count() >= 4
    for i in range(images.count()):  # every plot decoded and drawn
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    cm = metrics["test"]["confusion_matrix"]
    assert page.locator(".mistake").count() == min(cm["fp"] + cm["fn"], 20)
    assert "\nseed: 7\n" in page.locator("pre.config").inner_text()
    page.close()


def test_long_label_names_are_shown_whole_beside_aligned_bars(browser, cli, tmp_path: Path) -> None:
    """The bars' name column grows to the longest label (up to 18rem): a fixed 9rem clipped 20-character
    names, and the bars of every label still start at the same x."""
    from test_multiclass import QUICK, three_labels

    long = {name: f"{name}_sentiment_class" for name in ("positive", "negative", "mixed")}
    data = three_labels(tmp_path / "three.csv")
    rows = data.read_text().splitlines()
    renamed = [rows[0], *(row.rsplit(",", 1)[0] + "," + long[row.rsplit(",", 1)[1]] for row in rows[1:])]
    data.write_text("\n".join(renamed) + "\n")
    assert cli(["train", "--data", data, "-o", tmp_path / "m", "-q", *QUICK]).exit_code == 0
    proc, url = start_server(tmp_path / "m")
    try:
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(url)
        page.fill("#text", "a great and wonderful film")
        page.click("#go")
        page.wait_for_selector("#result:not([hidden])", timeout=10000)
        names = page.locator("#bars .bar span.name")
        assert sorted(names.all_inner_texts()) == sorted(long.values())
        assert names.evaluate_all("els => els.every(e => e.scrollWidth <= e.clientWidth)")  # none clipped
        lefts = page.locator("#bars .bar div.track").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().left)"
        )
        assert len(lefts) == 3 and max(lefts) - min(lefts) < 1
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
