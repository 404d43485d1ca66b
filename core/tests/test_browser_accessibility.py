"""Every portal page, in chromium, passes the WCAG 2.1 AA scan (axe-core: no serious or
critical violation) at desktop and phone width, and at phone width nothing runs off the
screen; so do the sign-in, two-factor and error pages.

The pages come from the URL conf (accounts/tests/routes.py, as for the permission
matrix): every route outside the API and the console is a portal page scanned signed in
as an owner of a small world (core/tests/browser_world.py), unless the permission matrix
serves it to POST only, or it is a sign-in page (scanned below, signed out or mid-sign-in),
or NOT_PAGES says why it is no page. A page added later is scanned without anyone editing
this file; a page whose URL names an object the world lacks fails, naming the route.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import RequestFactory
from django.urls import Resolver404, resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.tests.permission_matrix import NOBODY, WEB
from accounts.tests.routes import ALL_ROUTES, Route, is_api, kwarg_value
from core.tests.browser import axe_violations, overflowing, shot
from core.tests.browser_world import World, portal_world

WEB_ROUTES = [r for r in ALL_ROUTES if not is_api(r) and not r.name.startswith("admin:")]

# Reached signed out or half-way through signing in: test_sign_in_two_factor_and_error_pages.
SIGN_IN_PAGES = {"login", "password_reset", "password_reset_done", "password_reset_confirm",
                 "password_reset_complete", "accept_invitation", "two_factor_verify", "two_factor_enrol",
                 "two_factor_recovery_codes"}
NOT_PAGES = {
    "healthz": "a JSON probe for the load balancer",
    "metrics": "Prometheus' text exposition, for a scraper with a token",
    "readyz": "a JSON probe for the load balancer",
    "api-schema": "the OpenAPI schema, YAML",
    "api-docs": "drf-spectacular's Swagger UI, a third party's page",
    "usage:export": "a CSV download",
    "invoices:pdf": "a PDF download",
    "invoices:credit_note_pdf": "a PDF download",
    "payments:receipt_pdf": "a PDF download",
    "invoices:year_pdfs": "a zip of a year's invoice PDFs",
    "finance:journal_csv": "a staff CSV download in the console (finance/tests/test_exports.py)",
    "finance:journal_datev": "a staff DATEV download in the console (finance/tests/test_exports.py)",
    "finance:reports": "a staff page in the console, scanned signed in as staff (finance/tests/test_browser_reports.py)",
    "finance:report": "a staff page in the console, scanned signed in as staff (finance/tests/test_browser_reports.py)",
    "finance:report_csv": "a staff CSV download in the console (finance/tests/test_report_console.py)",
    "payments:return": "back from a provider: redirects to the payment's page",
    "payments:method_added": "back from Stripe's card form: redirects to Payments",
}
# The chart's axis labels, read on a phone: at least this many CSS pixels high.
MIN_CHART_TEXT_PX = 11


def _post_only(route: Route) -> bool:
    return WEB.get((route.name, "GET")) == NOBODY


def portal_routes() -> list[Route]:
    return [r for r in WEB_ROUTES if r.name not in SIGN_IN_PAGES and r.name not in NOT_PAGES and not _post_only(r)]


def _url(route: Route, world: World) -> str:
    if not route.kwargs:
        return reverse(route.name)
    model = getattr(route.callback, "portal_model", None)
    obj = world.objects.get(route.name) or world.objects.get(model)
    if obj is None:
        pytest.fail(f"{route}: the scan has no {model.__name__ if model else 'object'} to open. Add one to "
                    f"core/tests/browser_world.py (World.objects), or to NOT_PAGES here saying why it is no page.")
    return reverse(route.name, kwargs={name: kwarg_value(route, name, obj) for name in route.kwargs})


def _open(page, url: str) -> list[str] | None:
    """Open `url`: [] when it is a page to check, None for a download (a CSV or PDF route
    added later is no page, and needs no entry here), else the problem: a page that does
    not answer 200 with HTML."""
    from playwright.sync_api import Error

    try:
        response = page.goto(url)
    except Error as exc:
        if "Download is starting" in exc.message:
            return None
        raise
    if response is None or response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
        return [f"{url} answered {response and response.status} {response and response.headers.get('content-type')}"
                f" (landed on {page.url}): a page the scan cannot read. If it is no page, list it in NOT_PAGES."]
    return []


def _scan(page, url: str) -> list[str]:
    return [f"{url}: {line}" for line in axe_violations(page)]


def test_the_lists_of_routes_that_are_no_portal_page_name_routes_that_exist_and_serve_get():
    routes = {r.name: r for r in WEB_ROUTES}
    stale = sorted((SIGN_IN_PAGES | set(NOT_PAGES)) - set(routes))
    assert not stale, f"listed here but no longer routes: {stale}"
    needless = sorted(name for name in SIGN_IN_PAGES | set(NOT_PAGES) if _post_only(routes[name]))
    assert not needless, f"POST-only routes are skipped anyway; no need to list {needless}"
    assert {"portal:dashboard", "usage:index", "invoices:detail", "invoices:credit_note", "payments:detail",
            "payments:sandbox_checkout", "payments:confirm"} <= {r.name for r in portal_routes()}


def test_every_portal_page_passes_the_accessibility_scan_at_desktop_width(portal_page):
    world = portal_world()
    page = portal_page(world.owner)
    problems: list[str] = []
    for route in portal_routes():
        url = _url(route, world)
        if (opened := _open(page, url)) is not None:
            problems += opened or _scan(page, url)
    assert problems == [], "\n".join(problems)
    assert page.js_errors == []


def test_every_portal_page_fits_a_phone_and_passes_the_scan_there(portal_page):
    """At 390 px: the scan, nothing running off the screen, and (one world for all, as a
    browser test costs a database flush) the three things a phone used to get wrong."""
    world = portal_world()
    page = portal_page(world.owner, viewport="phone")
    problems: list[str] = []
    for route in portal_routes():
        url = _url(route, world)
        if (opened := _open(page, url)) is None:
            continue
        if opened:
            problems += opened
            continue
        problems += _scan(page, url)
        problems += [f"{url}: runs off a 390 px screen: {line}" for line in overflowing(page)]
    assert problems == [], "\n".join(problems)

    # The invoice lines show every column, each cell inside the screen.
    page.goto(reverse("invoices:detail", args=[world.objects[_model("invoices", "Invoice")].pk]))
    lines = page.locator("table.lines tbody tr:not(.group)").first
    for column in ("Quantity", "Unit price", "Tax", "Amount"):
        cell = lines.locator(f"td[data-label='{column}']")
        box = cell.bounding_box()
        assert cell.is_visible() and box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (column, box)
    shot(page, "invoice-phone")

    # The navigation names each page in words, behind a Menu button.
    menu = page.get_by_role("button", name="Menu")
    assert menu.get_attribute("aria-expanded") == "false" and not page.locator("nav.nav").is_visible()
    menu.click()
    links = page.locator("nav.nav a").all()
    assert len(links) >= 8 and menu.get_attribute("aria-expanded") == "true"
    for link in links:
        assert link.is_visible() and link.inner_text().strip(), link.get_attribute("href")
        assert link.locator("span").evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 13
    shot(page, "navigation-phone", full_page=False)

    # The usage chart's labels are readable: its axis labels are HTML beside the stretched SVG
    # (usage/charts.py), so their computed size is what the phone shows.
    page.goto(reverse("usage:index"))
    sizes = page.locator("figure.bars .bars-y span, figure.bars .bars-x span").evaluate_all(
        "labels => labels.filter(l => l.getBoundingClientRect().width > 0).map(l => parseFloat(getComputedStyle(l).fontSize))")
    assert sizes and min(sizes) >= MIN_CHART_TEXT_PX, sizes
    legend = page.locator(".legend").inner_text()
    assert "GPU H100 × 8" in legend and "gpu-h100-8x" not in legend  # names people know, not codes
    shot(page, "usage-phone")


def _model(app: str, name: str):
    from django.apps import apps

    return apps.get_model(app, name)


def test_sign_in_two_factor_and_error_pages_pass_the_scan(portal_page, org, owner, make_member):
    """Scanned at desktop width; at phone width (they share one layout, auth_base.html) each
    is checked to fit, and the sign-in and code step are scanned again."""
    from accounts import services
    from accounts.models import Membership
    from accounts.tenancy import membership_caller
    from core.views import server_error

    _, token = services.invitation_create(organization=org, email="grace@acme.example", role="billing",
                                          by=membership_caller(Membership.objects.get(user=owner)))
    uid = urlsafe_base64_encode(force_bytes(owner.pk))
    signed_out = [reverse("login"), reverse("password_reset"), reverse("password_reset_done"),
                  reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(owner)]),
                  reverse("password_reset_complete"), reverse("accept_invitation", args=[token])]
    person = make_member(org, "admin", email="lin@acme.example").user
    problems: list[str] = []
    visited: set[str] = set()
    for viewport in ("desktop", "phone"):
        anonymous = portal_page(viewport=viewport)
        for url in signed_out:
            if not (opened := _open(anonymous, url)):
                problems += _check(anonymous, url, viewport, visited, scan=viewport == "desktop" or url == reverse("login"))
            problems += opened
            if url == reverse("login") and viewport == "desktop":
                shot(anonymous, "login-desktop")
        # Errors: a page that is not there, a page a viewer may not open, and the 500 page
        # (the handler's page, served in place of a URL).
        anonymous.goto("/no-such-page/")
        problems += _check(anonymous, "404", viewport, visited)
        refused = portal_page(make_member(org, "viewer").user, viewport=viewport)
        response = refused.goto(reverse("payments:sandbox_add_card"))
        assert response is not None and response.status == 403
        problems += _check(refused, "403", viewport, visited)
        anonymous.route("**/boom", _serve(500, server_error(RequestFactory().get("/boom")).content.decode()))
        anonymous.goto("/boom")
        problems += _check(anonymous, "500", viewport, visited)

        # Two-factor: enrol (QR code) and the recovery codes shown once, then the code step of the next sign-in.
        if viewport == "desktop":
            page = portal_page(viewport=viewport)
            _sign_in(page, person)
            page.goto(reverse("two_factor_enrol"))
            problems += _check(page, "two-factor enrol", viewport, visited)
            shot(page, "two-factor-enrol")
            page.fill("input[name=code]", _current_code(person))
            page.click("form.stacked button")
            page.wait_for_url(re.compile(r".*/two-factor/recovery-codes/.*"))
            problems += _check(page, "recovery codes", viewport, visited)
        page = portal_page(viewport=viewport)  # a new browser, signed out
        _sign_in(page, person)
        page.wait_for_url(re.compile(r".*/login/verify/.*"))
        problems += _check(page, "two-factor code step", viewport, visited, scan=True)
        if viewport == "desktop":
            shot(page, "two-factor-step")
    assert problems == [], "\n".join(problems)
    assert not SIGN_IN_PAGES - visited, f"SIGN_IN_PAGES lists routes this test did not scan: {SIGN_IN_PAGES - visited}"


def _check(page, what: str, viewport: str, visited: set[str], *, scan: bool | None = None) -> list[str]:
    """The scan (at desktop width unless `scan` says), and at phone width the overflow check;
    the route the page is at goes into `visited`."""
    try:
        visited.add(resolve(urlsplit(page.url).path).url_name or "")
    except Resolver404:
        pass  # the 404 and 500 pages
    found = _scan(page, f"{what} ({viewport})") if (viewport == "desktop" if scan is None else scan) else []
    if viewport == "phone":
        found += [f"{what}: runs off a 390 px screen: {line}" for line in overflowing(page)]
    return found


def _sign_in(page, user) -> None:
    page.goto(reverse("login"))
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", "correct horse battery")
    with page.expect_navigation():
        page.click("form.stacked button")


def _serve(status: int, body: str):
    return lambda route: route.fulfill(status=status, body=body, content_type="text/html")


def _current_code(user) -> str:
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=user)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"
