#!/usr/bin/env python3
"""Opens a data report of `kiln analyze --report` in a real browser — Debian's chromium, headless,
driven by chromium-driver through Selenium — and checks what a reader would see:

- one rendered section per expected feature (and no other), each with a drawn chart (an SVG with
  bars) unless it is a cross, which has no statistics of its own;
- exactly the expected features marked as over the drift threshold;
- no console errors (a blocked load would be one: the page's Content-Security-Policy refuses every
  fetch) and no resource loaded at all;

and saves a screenshot of the whole page. Exits 0 when every check passes, 1 otherwise, printing
each failure. Used by tests/e2e/analyze_report_e2e_test.cc; scripts/setup.sh installs chromium and
chromium-driver, scripts/python_env.sh test installs selenium.

usage: report_in_browser.py REPORT.html SCREENSHOT.png --feature NAME... [--drifted NAME...]
"""
import argparse
import pathlib
import shutil
import sys
import time


def open_browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        sys.exit("report_in_browser: chromium and chromium-driver are not installed (bash scripts/setup.sh installs them)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        sys.exit("report_in_browser: selenium is missing from this python (bash scripts/python_env.sh test installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: CI runs as root; --disable-dev-shm-usage: containers' /dev/shm is small.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,900", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The Debian driver named outright: Selenium Manager would otherwise look for one online.
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def check(browser, report, features, drifted):
    from selenium.webdriver.common.by import By

    failures = []
    browser.set_page_load_timeout(30)
    browser.get(report.resolve().as_uri())
    sections = {s.get_attribute("data-feature"): s for s in browser.find_elements(By.CSS_SELECTOR, "section.feature")}
    for name in features:
        section = sections.get(name)
        if section is None:
            failures.append(f"feature '{name}': no section")
            continue
        if not section.is_displayed() or section.size["height"] == 0:
            failures.append(f"feature '{name}': its section is not rendered")
        if section.get_attribute("data-kind") == "crossed":
            continue
        charts = section.find_elements(By.CSS_SELECTOR, "svg.chart")
        if len(charts) != 1:
            failures.append(f"feature '{name}': {len(charts)} charts, expected 1")
            continue
        chart = charts[0]
        bars = chart.find_elements(By.CSS_SELECTOR, "rect")
        if chart.size["width"] == 0 or chart.size["height"] == 0 or not bars:
            failures.append(f"feature '{name}': the chart is empty ({chart.size}, {len(bars)} bars)")
    for name in sorted(set(sections) - set(features)):
        failures.append(f"feature '{name}': a section for a feature not expected")
    marked = {name for name, s in sections.items() if "drifted" in (s.get_attribute("class") or "").split()}
    if marked != set(drifted):
        failures.append(f"features marked as drifted: {sorted(marked)}, expected {sorted(drifted)}")
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    if loaded:
        failures.append(f"the page loaded resources: {loaded}")
    for entry in browser.get_log("browser"):
        if entry["level"] == "SEVERE":
            failures.append(f"console error: {entry['message']}")
        else:
            print(f"console {entry['level']}: {entry['message']}")
    return failures, len(sections)


def save_screenshot(browser, path):
    # The whole page: the window as tall as the document (capped: Chromium limits texture sizes).
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1100, min(int(height) + 20, 16000))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not browser.save_screenshot(str(path)):
        return [f"could not save the screenshot {path}"]
    return []


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=pathlib.Path)
    parser.add_argument("screenshot", type=pathlib.Path)
    parser.add_argument("--feature", action="append", default=[], required=True, help="a feature the report must show")
    parser.add_argument("--drifted", action="append", default=[], help="a feature that must be marked as drifted")
    args = parser.parse_args()
    if not args.report.is_file():
        sys.exit(f"report_in_browser: {args.report}: no such file")
    start = time.monotonic()
    browser = open_browser()
    try:
        failures, shown = check(browser, args.report, args.feature, args.drifted)
        failures += save_screenshot(browser, args.screenshot)
    finally:
        browser.quit()
    for f in failures:
        print(f"FAIL: {f}")
    print(f"{shown} feature sections, {len(args.drifted)} marked as drifted, screenshot {args.screenshot}, "
          f"{time.monotonic() - start:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
