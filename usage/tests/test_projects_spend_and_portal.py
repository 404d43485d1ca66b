"""Projects and labels (issue 19, item 1): spend by project and label adds up to the same
cents as by product, the API shows and filters them, the portal changes them (audited),
and another organisation's projects stay out of sight."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from accounts.models import AuditLog
from usage.ingest import events_ingest
from usage.models import Project, Resource
from usage.spend import spend
from usage.tests.conftest import SPEND_NOW, spend_at
from usage.tests.test_api import _documented

pytestmark = pytest.mark.django_db

MARCH = {"start": date(2026, 3, 1), "end": date(2026, 4, 1), "interval": "day", "now": SPEND_NOW}


@pytest.fixture
def tagged(org, spend_history):
    """srv-a and srv-c in project "web", srv-b in none; team labels on a and b."""
    result = events_ingest(items=[
        {"id": "t1", "type": "updated", "resource": "srv-a", "timestamp": spend_at(2, 10), "project": "web",
         "labels": {"team": "red"}},
        {"id": "t2", "type": "updated", "resource": "srv-b", "timestamp": spend_at(2, 10), "labels": {"team": "blue"}},
        {"id": "t3", "type": "updated", "resource": "srv-c", "timestamp": spend_at(2, 3, 5), "project": "web"},
    ])
    assert result.accepted == 3, result.results
    return Project.objects.get(organization=org, slug="web")


def test_spend_by_project_and_by_label_add_up_to_the_same_total_as_by_product(org, tagged):
    by_product = spend(organization=org, group_by="product", **MARCH)
    by_project = spend(organization=org, group_by="project", **MARCH)
    by_team = spend(organization=org, group_by="label", label_key="team", **MARCH)
    assert by_product.total > 0
    assert by_project.total == by_product.total == by_team.total
    assert by_project.period_totals == by_product.period_totals == by_team.period_totals
    assert {s.group.key: s.group.name for s in by_project.series} == {"web": "web", "": "No project"}
    assert {s.group.key for s in by_team.series} == {"red", "blue", ""}  # srv-c has no team: ""
    by_resource = {s.group.key: s.total for s in spend(organization=org, group_by="resource", **MARCH).series}
    web = next(s for s in by_project.series if s.group.key == "web")
    assert web.total == by_resource["srv-a"] + by_resource["srv-c"]


def test_the_api_groups_spend_by_project_and_label_as_documented(org_api, org, tagged):
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    totals = {}
    for query in ({"group_by": "product"}, {"group_by": "project"}, {"group_by": "label", "label_key": "team"}):
        response = org_api.get("/api/v1/spend", {"start": "2026-03-01", "end": "2026-04-01", **query})
        assert response.status_code == 200, response.json()
        jsonschema.validate(response.json(), _documented(schema, "/api/v1/spend", "get", "200"))
        totals[query["group_by"]] = Decimal(response.json()["total"])
    assert totals["product"] == totals["project"] == totals["label"] > 0
    for bad in ({"group_by": "label"}, {"group_by": "label", "label_key": "-x"}, {"label_key": "team"}):
        response = org_api.get("/api/v1/spend", {"start": "2026-03-01", "end": "2026-04-01", **bad})
        assert response.status_code == 400 and "label_key" in response.json()["error"]["fields"]


def test_the_resources_api_shows_project_and_labels_and_filters_by_them(org_api, org, tagged):
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    body = org_api.get("/api/v1/resources").json()
    jsonschema.validate(body, _documented(schema, "/api/v1/resources", "get", "200"))
    shown = {r["external_id"]: (r["project"], r["labels"]) for r in body["results"]}
    assert shown == {"srv-a": ("web", {"team": "red"}), "srv-b": (None, {"team": "blue"}), "srv-c": ("web", {})}

    def ids(**query):
        response = org_api.get("/api/v1/resources", query)
        assert response.status_code == 200, response.json()
        return sorted(r["external_id"] for r in response.json()["results"])

    assert ids(project="web") == ["srv-a", "srv-c"]
    assert ids(project="-") == ["srv-b"]
    assert ids(label="team:red") == ["srv-a"]
    assert ids(label="team") == ["srv-a", "srv-b"]
    assert ids(label=["team", "team:blue"]) == ["srv-b"]
    assert ids(project="nope") == []
    for bad in ({"label": "bad key:x"}, {"label": "team:a\x00"}, {"project": "Not A Slug\x00"}):
        response = org_api.get("/api/v1/resources", bad)
        assert response.status_code == 400, bad
        assert set(response.json()["error"]["fields"]) == set(bad)

    projects = org_api.get("/api/v1/projects").json()
    jsonschema.validate(projects, _documented(schema, "/api/v1/projects", "get", "200"))
    assert [(p["slug"], p["resources"]) for p in projects["results"]] == [("web", 2)]


def test_another_organisations_project_is_invisible(org, other_org, make_key, api, tagged, client, make_member):
    theirs = api(make_key(other_org, scopes=["usage:read"]))
    assert theirs.get(f"/api/v1/projects/{tagged.pk}").status_code == 404
    assert theirs.get("/api/v1/projects").json()["results"] == []
    assert theirs.get("/api/v1/resources", {"project": "web"}).json()["results"] == []
    outsider = make_member(other_org, "owner").user
    client.force_login(outsider)
    assert client.post(f"/usage/projects/{tagged.pk}/rename", {f"p{tagged.pk}-name": "Mine"}).status_code == 404
    resource = Resource.objects.get(external_id="srv-b")
    assert client.post(f"/usage/resources/{resource.pk}/tags", {"project": tagged.pk}).status_code == 404
    own = Resource.objects.create(organization=other_org, external_id="srv-x", product=resource.product,
                                  state_since=SPEND_NOW)
    response = client.post(f"/usage/resources/{own.pk}/tags", {"project": tagged.pk, "labels": ""})
    assert response.status_code == 400  # not one of its organisation's projects: a form error
    own.refresh_from_db()
    assert own.project is None
    tagged.refresh_from_db()
    assert tagged.name == "web"


def test_an_admin_moves_a_resource_and_changes_its_labels_audited(client, org, owner, tagged):
    client.force_login(owner)
    resource = Resource.objects.get(external_id="srv-b")
    page = client.get(f"/usage/resources/{resource.pk}/").content.decode()
    assert f'action="/usage/resources/{resource.pk}/tags"' in page and "team=blue" in page
    response = client.post(f"/usage/resources/{resource.pk}/tags",
                           {"project": tagged.pk, "labels": "team=green\nexample.com/cost-centre=cc-42\n"})
    assert response.status_code == 302
    resource.refresh_from_db()
    assert (resource.project, resource.labels) == (tagged, {"example.com/cost-centre": "cc-42", "team": "green"})
    entry = AuditLog.objects.get(action="resource.tags_changed")
    assert entry.actor == owner and entry.object_id == str(resource.pk)
    assert entry.changes["labels"][0] == {"team": "blue"}

    # A platform event older than the portal's change changes nothing.
    events_ingest(items=[{"id": "t9", "type": "updated", "resource": "srv-b", "timestamp": spend_at(2, 10, 30),
                          "project": None}])
    resource.refresh_from_db()
    assert resource.project == tagged

    bad = client.post(f"/usage/resources/{resource.pk}/tags", {"project": "", "labels": "no equals sign"})
    assert bad.status_code == 400 and "write key=value" in bad.content.decode()
    many = "\n".join(f"k{i}=v" for i in range(21))
    assert "At most 20 labels" in client.post(f"/usage/resources/{resource.pk}/tags",
                                              {"labels": many}).content.decode()


def test_projects_are_listed_created_and_renamed_by_admins_and_only_listed_for_viewers(
        client, org, owner, make_member, tagged):
    client.force_login(owner)
    page = client.get("/usage/projects/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "No project" in html and "Create project" in html
    march = spend(organization=org, group_by="project", start=date(2026, 3, 1), end=date(2026, 4, 1),
                  interval="month", now=SPEND_NOW)
    assert page.context["month_total"] == march.total
    assert client.post("/usage/projects/", {"name": "ML training", "slug": ""}).status_code == 302
    created = Project.objects.get(organization=org, slug="ml-training")
    again = client.post("/usage/projects/", {"name": "Again", "slug": "ml-training"})
    assert again.status_code == 400 and "already a project" in again.content.decode()
    assert client.post(f"/usage/projects/{created.pk}/rename", {f"p{created.pk}-name": "GPU training"}).status_code == 302
    created.refresh_from_db()
    assert (created.name, created.slug) == ("GPU training", "ml-training")
    assert list(AuditLog.objects.filter(action__startswith="project.").values_list("action", flat=True)
                .order_by("id")) == ["project.created", "project.renamed"]

    viewer = make_member(org, "viewer").user
    client.force_login(viewer)
    html = client.get("/usage/projects/").content.decode()
    assert "GPU training" in html and "Create project" not in html
    assert client.post("/usage/projects/", {"name": "Nope"}).status_code == 403
    resource = Resource.objects.get(external_id="srv-a")
    assert "Project and labels" not in client.get(f"/usage/resources/{resource.pk}/").content.decode()


def test_the_explorer_and_its_csv_group_by_project_and_label(client, org, owner, tagged):
    client.force_login(owner)
    page = client.get("/usage/spend/", {"start": "2026-03-01", "to": "2026-03-31", "group_by": "project"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "No project" in html and "Label: team" in html
    query = {"start": "2026-03-01", "to": "2026-03-31", "group_by": "label", "label_key": "team"}
    assert client.get("/usage/spend/", query).status_code == 200
    response = client.get("/usage/spend.csv", query)
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["label:team"] for r in rows} == {"red", "blue", ""}
    by_product = spend(organization=org, group_by="product", start=date(2026, 3, 1), end=date(2026, 4, 1),
                       interval="day", now=SPEND_NOW)
    assert sum(Decimal(r["amount"]) for r in rows) == by_product.total
    assert client.get("/usage/spend/", {**query, "label_key": ""}).status_code == 400
