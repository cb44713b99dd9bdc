"""The status page, in a real headless Chromium, during a backend outage and after it.

Drives Debian's `chromium` through `chromedriver` (selenium). Skipped only when chromium or
chromedriver is missing (`apt-get install chromium chromium-driver`; CI installs them).
Screenshots are saved into the test's temporary folder (not committed); their paths are
printed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import AckingSender, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

ROW = 'tr[data-exporter="otlp"][data-signal="logs"]'
# The conftest config, changed so that the drain after the outage is slow enough to watch:
# batches of at most 100 records sent by one consumer (the backend comes back slow).
CHANGES = [
    ('health_check: {{ endpoint: "127.0.0.1:{port}" }}',
     'health_check: {{ endpoint: "127.0.0.1:{port}", '
     'check_delivery: {{ max_time_since_success: 2s }} }}'),
    ("sending_queue: {{ storage: file_storage }}",
     "sending_queue: {{ storage: file_storage, num_consumers: 1 }}"),
    ("batch: {{ timeout: 200ms, send_batch_size: 512 }}",
     "batch: {{ timeout: 200ms, send_batch_size: 100, send_batch_max_size: 100 }}"),
]


@pytest.fixture
def browser():
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("chromium or chromedriver not found; install them with "
                    "`apt-get install -y chromium chromium-driver` (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def page_state(driver) -> dict:
    """What the page shows now, read in one script so a re-render cannot tear it."""
    return driver.execute_script("""
        const row = document.querySelector(arguments[0]);
        const value = sel => row && row.querySelector(sel) ? row.querySelector(sel).dataset.value : null;
        return {
          verdict: document.getElementById("verdict").textContent,
          failing: [...document.querySelectorAll("#failing-checks li")].map(li => li.dataset.check),
          rowChecks: row ? [...row.querySelectorAll(".verdict .check")].map(e => e.dataset.check) : [],
          records: value("td.queue-records") === null ? null : Number(value("td.queue-records")),
          lastError: row ? row.querySelector("td.last-error").textContent : "",
          updated: document.getElementById("updated").textContent,
          fetchError: document.getElementById("fetch-error").textContent,
        };
    """, ROW)


def screenshot(driver, directory: Path, name: str) -> Path:
    out = Path(os.environ.get("OTELSPOOL_ARTIFACTS", directory)) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    print(f"\nscreenshot: {out}")
    return out


def test_status_page_shows_an_outage_and_recovery(browser, make_backend, make_otelspool,
                                                  tmp_path):
    """Scenario: a client sends logs; the backend is SIGKILLed, then restarted on its port;
    the status page stays open in headless Chromium throughout.
    Guarantees: during the outage the page shows the queue growing (its queued-records figure
    rises between refreshes), the failing `max_time_since_success` check at the top and in
    the exporter's row, and the backend's error; after recovery (the backend answering slowly,
    the client stopped) it shows the queued records falling, refresh after refresh, to 0 and
    the verdict `ready`. Screenshots of both are saved."""
    backend = make_backend()
    backend.start()
    spool = make_otelspool(backend.grpc_port)
    config = spool.config_path.read_text()
    for old, new in CHANGES:
        old, new = old.format(port=spool.health_port), new.format(port=spool.health_port)
        assert old in config, f"{old!r} not in the conftest config:\n{config}"
        config = config.replace(old, new)
    spool.config_path.write_text(config)
    spool.start()

    browser.get(f"http://127.0.0.1:{spool.health_port}/status")
    wait_until("the page to show `ready`", lambda: page_state(browser)["verdict"] == "ready", 20)

    sender = AckingSender(spool.grpc_endpoint, f"page-{uuid.uuid4().hex[:8]}", batch_size=20,
                          pause=0.1).start()
    try:
        sender.wait_acked(100)
        backend.kill9()

        seen: list[int] = []

        def growing_and_failing():
            s = page_state(browser)
            if s["records"] is not None and (not seen or s["records"] != seen[-1]):
                seen.append(s["records"])
            grew = len(seen) >= 3 and seen[-1] > seen[-3] > 0
            failing = ("max_time_since_success" in s["failing"]
                       and "max_time_since_success" in s["rowChecks"])
            return s if grew and failing and s["verdict"] == "not ready" else None

        during = wait_until("the page to show the queue growing and the failing check",
                            growing_and_failing, 40, interval=0.5,
                            diagnostics=lambda: f"page: {page_state(browser)}; seen {seen}")
        print(f"\nqueued records seen on the page during the outage: {seen}")
        assert during["lastError"].startswith("retryable"), during
        assert during["fetchError"] == "", during
        screenshot(browser, tmp_path, "status-page-outage.png")
        spool.assert_alive("the backend went away")
    finally:
        sender.stop()
    # Back, but slow (each export takes 1 s), so that the drain spans several refreshes.
    backend.start(mode="slow:1000")

    drained: list[int] = []

    def drained_and_ready():
        s = page_state(browser)
        if s["records"] is not None and (not drained or s["records"] != drained[-1]):
            drained.append(s["records"])
        return s if s["records"] == 0 and s["verdict"] == "ready" and not s["failing"] else None

    after = wait_until("the page to show the queue drained and `ready`", drained_and_ready, 60,
                       interval=0.5, diagnostics=lambda: f"page: {page_state(browser)}")
    print(f"queued records seen on the page during recovery: {drained}")
    assert after["rowChecks"] == [], after
    # The last acknowledged batches may still show up first; from the peak on, only falls.
    falling = drained[drained.index(max(drained)):]
    assert falling == sorted(falling, reverse=True), f"the queue did not only fall: {drained}"
    assert len(falling) >= 3 and falling[0] > falling[1] > 0, \
        f"no drain visible between refreshes: {drained}"
    screenshot(browser, tmp_path, "status-page-recovered.png")
