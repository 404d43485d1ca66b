"""Browser tests: the portal and console driven in Debian's chromium through Playwright.

A pytest plugin (root conftest.py loads it). A test asks for `portal_page` (or `browser`,
`live_url`) and gets a real browser on a real server (`live_server`, a thread serving this
test's database, so the test runs with `transactional_db`: what the test writes is
committed and seen by the server, and the tables are emptied after it).

    def test_dashboard(portal_page, owner):
        page = portal_page(owner)                 # signed in, desktop width
        page.goto("/")                            # relative to the live server
        assert not axe_violations(page)           # serious and critical only
        shot(page, "dashboard-desktop")           # kept when SCREENSHOTS_DIR is set

`portal_page(user, viewport="phone")` opens 390 × 844 (an iPhone 12 to 15's CSS width).
Staff users come in with their second factor verified, as `client.force_login` does.

Screenshots go to `SCREENSHOTS_DIR` when it is set (`make screenshots` sets it to
docs/screenshots, so the docs' images come from the same tests CI runs), else to the test's
temporary directory. `.ci/run` installs chromium when /usr/bin/chromium is missing; without
it these tests fail (never skip: a skipped browser suite would be a green CI that proved
nothing).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-extensions"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 820}, "laptop": {"width": 1366, "height": 768},
             "phone": {"width": 390, "height": 844}}
# WCAG 2.1 A and AA rules; a violation of impact serious or critical fails the test.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}

_current_tmp: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives chromium through Playwright (core/tests/browser.py)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"portal_page", "browser", "live_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def _playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(_playwright) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)")
    # Playwright talks to chromium from an event loop of its own; Django must not take the
    # test thread for async and refuse ORM calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    instance = _playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield instance
    instance.close()


@pytest.fixture
def live_url(live_server, transactional_db) -> str:
    return live_server.url


@pytest.fixture
def portal_page(browser, live_url, tmp_path) -> Iterator[Callable[..., Any]]:
    """portal_page(user=None, viewport="desktop") -> a Playwright Page on the live server,
    signed in as `user` (none: signed out). Relative URLs in goto() go to the live server."""
    from django.conf import settings
    from django.test import Client

    contexts: list[Any] = []
    _current_tmp[:] = [tmp_path]

    def _open(user=None, viewport: str = "desktop") -> Any:
        context = browser.new_context(base_url=live_url, viewport=VIEWPORTS[viewport], device_scale_factor=1,
                                      locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(15_000)
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                                  "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                                  "url": live_url}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # a test may assert the page raised no JavaScript error
        return page

    yield _open
    for context in contexts:
        context.close()


def axe_violations(page: Any, *, impacts: set[str] = BLOCKING) -> list[str]:
    """The page's WCAG 2.1 AA violations of the given impacts, one readable line each
    (rule, impact, the first offending elements and axe's summary of what is wrong)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS},
                                       "resultTypes": ["violations"]})
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") not in impacts:
            continue
        nodes = violation["nodes"][:3]
        where = "; ".join(" ".join(n["target"]) + ": " + (n.get("failureSummary") or "").replace("\n", " ")
                          for n in nodes)
        found.append(f"{violation['id']} ({violation['impact']}, {len(violation['nodes'])} elements): {where}")
    return found


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Screenshot to SCREENSHOTS_DIR/name.png when set (docs/screenshots from `make screenshots`),
    else to the current test's temporary directory. Returns the path."""
    target_dir = Path(os.environ["SCREENSHOTS_DIR"]) if os.environ.get("SCREENSHOTS_DIR") else (
        _current_tmp[0] if _current_tmp else Path("/tmp"))
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def overflowing(page: Any, selector: str = "body") -> list[str]:
    """Elements under `selector` whose right edge passes the viewport (a table cut off on a
    phone), or text cut by its own box; each as 'tag.class "text…"'. Empty when all fits."""
    return page.evaluate(
        """(selector) => {
            const width = document.documentElement.clientWidth;
            const out = [];
            for (const el of document.querySelectorAll(selector + ' *')) {
                const style = getComputedStyle(el);
                if (style.display === 'none' || style.visibility === 'hidden') continue;
                let hiddenByScroller = false;
                for (let p = el.parentElement; p; p = p.parentElement) {
                    const ps = getComputedStyle(p);
                    if (['auto', 'scroll', 'hidden'].includes(ps.overflowX) && p.scrollWidth > p.clientWidth) {
                        hiddenByScroller = true; break;
                    }
                }
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) continue;
                if (r.right > width + 1 || hiddenByScroller) {
                    out.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') +
                             ' "' + (el.textContent || '').trim().slice(0, 40) + '"');
                }
            }
            return out;
        }""",
        selector,
    )
