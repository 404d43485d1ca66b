"""The browser harness itself: a real chromium reaches the live server, signs in, and the
accessibility scan sees what it should (core/tests/browser.py)."""

from __future__ import annotations

from core.tests.browser import axe_violations, overflowing, shot


def test_a_signed_in_owner_sees_their_dashboard_in_chromium(portal_page, owner):
    page = portal_page(owner)
    page.goto("/")
    assert "/login" not in page.url
    assert owner.memberships.first().organization.name in page.content()
    assert shot(page, "smoke-dashboard").stat().st_size > 10_000
    assert page.js_errors == []


def test_the_accessibility_scan_finds_a_planted_violation(portal_page):
    page = portal_page()
    page.goto("/login/")
    page.evaluate("""() => { const b = document.createElement('button'); b.style.color = '#ccc';
                             b.style.background = '#fff'; b.textContent = 'pale'; document.body.append(b);
                             const i = document.createElement('img'); i.src = 'x.png'; document.body.append(i); }""")
    found = axe_violations(page)
    assert any(line.startswith("image-alt") for line in found), found
    assert any(line.startswith("color-contrast") for line in found), found


def test_the_overflow_check_finds_a_table_wider_than_a_phone(portal_page):
    page = portal_page(viewport="phone")
    page.goto("/login/")
    assert overflowing(page) == []
    page.evaluate("""() => { const t = document.createElement('table'); t.className = 'wide';
                             t.innerHTML = '<tr><td style="min-width:600px">wide cell</td></tr>';
                             document.body.append(t); }""")
    assert any("wide cell" in line for line in overflowing(page))
