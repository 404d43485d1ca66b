"""The demo's whole money loop, clicked through in headless Chromium, with screenshots.

Start the demo (`make run`), then:

    make screenshots    # both scripts; or, with requirements-dev.txt installed:
    .venv/bin/python docs/screenshots/money_loop.py http://127.0.0.1:8000

As Acme AI (prepaid): top up through the sandbox checkout and see the balance rise;
start a server in the sandbox panel and see the balance fall as the worker meters it;
set auto top-up above the balance and see the saved card charged; then as Nordlicht
Render (postpaid) pay last month's invoice through the sandbox checkout. Writes
docs/screenshots/loop-*.png and prints each balance it read. Takes 3 to 4 minutes:
metering runs once a minute and rates up to two minutes ago.
"""

from __future__ import annotations

import re
import sys
import time
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
EMAIL, PASSWORD = "customer@cloudbill.example", "cloudbill-demo"


def balance(page: Page, base: str) -> Decimal:
    page.goto(f"{base}/credits/")
    text = page.locator(".stat").first.inner_text()
    return Decimal(re.sub(r"[^0-9.\-]", "", text.replace("−", "-")))


def last_minute_charge(page: Page, base: str) -> Decimal:
    """The cost of a minute in the newest metered-usage line of the ledger (a line covers
    one metering tick: "Metered usage 2026-11-22 05:38–05:39 UTC")."""
    page.goto(f"{base}/credits/")
    row = page.locator("table.data tbody tr", has_text="Metered usage").first
    amount = Decimal(re.sub(r"[^0-9.]", "", row.locator("td").nth(4).inner_text()))
    (h0, m0), (h1, m1) = re.findall(r"(\d\d):(\d\d)", row.locator("td").nth(2).inner_text())[:2]
    minutes = ((int(h1) * 60 + int(m1)) - (int(h0) * 60 + int(m0))) % 1440 or 1440
    return (amount / minutes).quantize(Decimal("0.0001"))


def wait_for(page: Page, base: str, label: str, check, timeout: float = 300) -> Decimal:
    deadline = time.monotonic() + timeout
    while True:
        value = balance(page, base)
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"{label}: balance stayed at {value}")
        time.sleep(10)


def checkout(page: Page, screenshot: str | None = None) -> None:
    """The sandbox checkout page: pay."""
    page.wait_for_url(re.compile(r".*/payments/sandbox/checkout/\d+"))
    if screenshot:
        page.screenshot(path=OUT / screenshot, full_page=True)
    with page.expect_navigation():
        page.click("button[name=outcome][value=pay]")


def main(base: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.stacked button")
        page.wait_for_url(f"{base}/")

        start = balance(page, base)
        print(f"1. Acme AI balance at the start: {start}")

        # Top up 250 through the sandbox checkout.
        page.goto(f"{base}/payments/")
        page.fill("#topup_amount", "250")
        page.check("input[name=provider][value=sandbox]")  # the hosted checkout, not the saved card
        page.screenshot(path=OUT / "loop-1-top-up.png", full_page=True)
        page.click("form.topup-form button:has-text('Continue')")
        checkout(page, "loop-2-sandbox-checkout.png")
        topped = balance(page, base)
        print(f"2. after the 250.00 sandbox top-up: {topped} (rose by {topped - start}; the fleet kept running)")
        page.screenshot(path=OUT / "loop-3-balance-risen.png", full_page=True)

        # Run a server.
        fleet_minute = last_minute_charge(page, base)
        page.goto(f"{base}/usage/")
        h100 = next(t for t in page.locator("#id_product option").all_inner_texts() if "H100" in t)
        page.select_option("#id_product", label=h100)
        page.fill("#id_name", "loop-h100")
        page.click("text=Start server")
        page.wait_for_selector("text=loop-h100")
        page.screenshot(path=OUT / "loop-4-server-running.png", full_page=True)
        deadline = time.monotonic() + 300
        while (minute := last_minute_charge(page, base)) < fleet_minute + Decimal("0.30"):  # H100 8x: 0.40/min
            if time.monotonic() > deadline:
                raise SystemExit(f"the sandbox server was not charged: last minute {minute}, fleet {fleet_minute}")
            time.sleep(10)
        fallen = balance(page, base)
        print(f"3. server running, metered by the worker: {fallen} (fell by {topped - fallen}); a minute cost "
              f"{fleet_minute} before the server and {minute} with it")
        page.screenshot(path=OUT / "loop-5-balance-falling.png", full_page=True)

        # Auto top-up: a threshold above the balance fires it at once.
        threshold = (fallen + 1000).quantize(Decimal("1"))
        page.check("input[name=enabled]")
        page.fill("#id_threshold", str(threshold))
        page.fill("#id_amount", "500")
        page.fill("#id_monthly_cap", "2000")
        page.locator("form[action$='auto-top-up'] button").click()
        page.wait_for_load_state()
        refilled = wait_for(page, base, "auto top-up", lambda b: b > fallen + 400, timeout=120)
        print(f"4. auto top-up below {threshold}: {refilled} (the saved sandbox card was charged 500.00)")
        page.screenshot(path=OUT / "loop-6-auto-top-up.png", full_page=True)
        page.locator("form[action$='auto-top-up'] input[name=enabled]").uncheck()
        page.locator("form[action$='auto-top-up'] button").click()
        page.wait_for_load_state()
        # Stop the server again.
        page.goto(f"{base}/usage/")
        with page.expect_navigation():
            page.locator("tr", has_text="loop-h100").locator("button", has_text="Stop").first.click()
        print(f"5. {page.locator('.messages').inner_text().strip()}")

        # Pay an invoice as Nordlicht Render (postpaid).
        nordlicht = next(t for t in page.locator("#org-switch option").all_inner_texts() if "Nordlicht" in t)
        with page.expect_navigation():
            page.select_option("#org-switch", label=nordlicht)
        page.goto(f"{base}/payments/")
        row = page.locator("table.data tr", has=page.locator("form.pay-row")).first
        if not row.count():
            raise SystemExit("6. Nordlicht Render has no open invoice left to pay (the loop ran before?)")
        number = row.locator("td strong").inner_text()
        owed = row.locator("td.num").inner_text()
        page.screenshot(path=OUT / "loop-7-open-invoice.png", full_page=True)
        row.locator("button[name=provider]").first.click()
        checkout(page)
        page.goto(f"{base}/invoices/")
        page.click(f"text={number}")
        page.wait_for_load_state()
        status = page.locator(".page-head .badge").inner_text()
        print(f"6. Nordlicht invoice {number} ({owed}) paid through the sandbox: status {status}")
        page.screenshot(path=OUT / "loop-8-invoice-paid.png", full_page=True)
        browser.close()
        print(f"money loop: start={start} topped_up={topped} metered={fallen} auto_topped_up={refilled} "
              f"invoice={number} status={status}")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8000")
