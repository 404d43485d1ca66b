"""Bad input on the portal's and the API's newer routes (issue 16 history, the spend explorer,
the top-up and pay flows, the journal's exports): garbage query strings, dates at the edge of
what `date` holds, non-numeric and huge ids, empty forms. Each is a 4xx or a page, never a 500."""

import pytest

pytestmark = pytest.mark.django_db

URLS = [
    ("/usage/spend/", {"start": "2026-03-01", "to": "9999-12-31"}),
    ("/usage/spend/", {"start": "9999-12-31", "to": "9999-12-31"}),
    ("/usage/spend/", {"start": "0001-01-01", "to": "0001-01-02"}),
    ("/usage/spend.csv", {"start": "2026-03-01", "to": "9999-12-31"}),
    ("/usage/spend/", {"preset": "nope"}),
    ("/usage/spend/", {"interval": ["day", "x"], "group_by": "zzz"}),
    ("/usage/export.csv", {"start": "9999-12-31", "end": "9999-12-31"}),
    ("/usage/export.csv", {"start": "x"}),
    ("/credits/ledger.csv", {"start": "9999-12-31", "end": "9999-12-31"}),
    ("/credits/", {"start": "9999-12-31", "end": "9999-12-31", "page": "x"}),
    ("/credits/", {"kind": "zzz"}),
    ("/payments/top-up", {"amount": "1e999"}),
    ("/payments/top-up", {"amount": "NaN"}),
    ("/payments/top-up", {"amount": "-5"}),
    ("/payments/top-up", {"amount": "99999999999999999999999999"}),
    ("/payments/export.csv", {"start": "9999-12-31", "end": "9999-12-31"}),
    ("/payments/export.csv", {"start": "zz"}),
    ("/invoices/", {"year": "99999999999"}),
    ("/invoices/", {"start": "9999-12-31", "end": "9999-12-31"}),
    ("/invoices/export.csv", {"start": "9999-12-31", "end": "9999-12-31"}),
    ("/invoices/export.csv", {"start": "zz"}),
    ("/invoices/99999999999/pdfs.zip", {}),
    ("/invoices/0/pdfs.zip", {}),
    ("/invoices/99999999999999999999999/", {}),
    ("/console/finance/journal.csv", {"from": "9999-12-31", "to": "9999-12-31"}),
]


@pytest.mark.parametrize(("url", "query"), URLS)
def test_a_portal_route_answers_bad_query_strings_without_a_500(client, owner, url, query):
    client.force_login(owner)
    r = client.get(url, query)
    assert 200 <= r.status_code < 500


@pytest.mark.parametrize("data", [{}, {"amount": "NaN", "provider": "saved_card"}, {"amount": "1e999", "provider": "sandbox"},
                                  {"amount": "5", "provider": "zzz"}, {"amount": "5", "provider": "saved_card", "confirm_card": "x"}])
def test_the_top_up_form_answers_bad_posts_without_a_500(client, owner, data):
    client.force_login(owner)
    r = client.post("/payments/top-up", data)
    assert 200 <= r.status_code < 500


@pytest.mark.parametrize("data", [{}, {"amount": "NaN", "provider": "sandbox"}, {"amount": "5", "provider": "sandbox", "back": "https://evil.example"}])
def test_paying_an_invoice_answers_bad_posts_and_ids_without_a_500(client, owner, data):
    client.force_login(owner)
    for iid in ("999999999999999999999", "1"):
        r = client.post(f"/payments/invoices/{iid}/pay", data)
        assert 200 <= r.status_code < 500


@pytest.mark.parametrize("query", ["organization=99999999999999999999", "organization=-1", "organization=abc",
                                   "organization=1.5", "organization=0x10"])
@pytest.mark.parametrize("path", ["/api/v1/spend/forecast", "/api/v1/spend?start=2026-03-01&end=2026-03-02&"])
def test_the_spend_api_answers_bad_organisation_ids_with_a_4xx(platform_api, path, query):
    sep = "" if path.endswith("&") else "?"
    r = platform_api.get(f"{path}{sep}{query}")
    assert 200 <= r.status_code < 500


@pytest.mark.parametrize("query", ["start=9999-12-30&end=9999-12-31", "start=2026-03-01&end=9999-12-31",
                                   "start=x&end=y", "start=2026-03-01&end=2026-03-02&interval=[]&group_by=",
                                   "start=2026-03-01&end=2026-03-02&organization=99999999999999999999"])
def test_the_spend_api_answers_bad_ranges_with_a_4xx(org_api, query):
    r = org_api.get(f"/api/v1/spend?{query}")
    assert 200 <= r.status_code < 500
