"""Screenshots of the portal shell for the README, in headless Chromium.

Start the demo (`make run`, or runserver on a seeded database), then:

    make screenshots    # both scripts; or, with requirements-dev.txt installed:
    .venv/bin/python docs/screenshots/take.py http://127.0.0.1:8000

Writes docs/screenshots/<page>-<desktop|narrow>.png. Creates one API key ("ci-deploy")
in the demo organisation, to show the key as it is shown once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 820}, "narrow": {"width": 390, "height": 844}}
EMAIL, PASSWORD = "customer@cloudbill.example", "cloudbill-demo"


def main(base: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for label, viewport in VIEWPORTS.items():
            page = browser.new_page(viewport=viewport, device_scale_factor=1)
            page.goto(f"{base}/login/")
            page.screenshot(path=OUT / f"login-{label}.png")
            page.fill("input[name=username]", EMAIL)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit], form.stacked button")
            page.wait_for_url(f"{base}/")
            page.screenshot(path=OUT / f"dashboard-{label}.png", full_page=True)
            page.goto(f"{base}/team/")
            page.screenshot(path=OUT / f"team-{label}.png", full_page=True)
            page.goto(f"{base}/api-keys/")
            page.fill("input[name=name]", f"ci-deploy-{label}")
            page.click("form.stacked button")
            page.wait_for_selector("#new-key")
            page.screenshot(path=OUT / f"api-keys-{label}.png", full_page=True)
            page.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8000")
