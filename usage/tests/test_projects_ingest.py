"""Projects and labels from the platform's events (issue 19, item 1)."""

from __future__ import annotations

import pytest

from accounts.tests.factories import OrganizationFactory
from usage.ingest import events_ingest
from usage.models import Project, Resource
from usage.tests.conftest import at
from usage.tests.factories import ProductFactory, add_price
from usage.tests.test_ingest import ev, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def flavour(db):
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    return product


def _created(event_id, resource, org, **extra):
    return ev(event_id, "created", resource=resource, organization=org.pk, product="cpu-4", when=at(9, 0), **extra)


def test_created_sets_the_project_made_on_first_use_and_the_labels(org, flavour, clock):
    result = events_ingest(items=[
        _created("e1", "srv-1", org, project="ml-training", labels={"team": "research", "example.com/env": "prod"}),
        _created("e2", "srv-2", org, project="ml-training"),
    ])
    assert statuses(result) == [("e1", "accepted"), ("e2", "accepted")]
    project = Project.objects.get(organization=org)
    assert (project.slug, project.name) == ("ml-training", "ml-training")
    one, two = Resource.objects.order_by("external_id")
    assert (one.project, one.labels) == (project, {"example.com/env": "prod", "team": "research"})
    assert (two.project, two.labels) == (project, {})


def test_an_updated_event_changes_them_and_an_older_one_arriving_late_does_not(org, flavour, clock):
    events_ingest(items=[_created("e1", "srv-1", org, project="alpha", labels={"team": "a"})])
    result = events_ingest(items=[ev("e2", "updated", when=at(12, 0), project="beta", labels={"team": "b"})])
    assert statuses(result) == [("e2", "accepted")]
    server = Resource.objects.get()
    assert (server.project.slug, server.labels) == ("beta", {"team": "b"})
    assert server.state == "provisioning"  # an updated event changes no state
    assert server.intervals.count() == 1

    late = events_ingest(items=[ev("e3", "updated", when=at(11, 0), project="gamma")])
    assert statuses(late) == [("e3", "accepted")]
    server.refresh_from_db()
    assert server.project.slug == "beta"

    events_ingest(items=[ev("e4", "updated", when=at(13, 0), project=None), ev("e5", "updated", when=at(13, 0),
                                                                              labels={})])
    server.refresh_from_db()
    assert (server.project, server.labels) == (None, {})


def test_a_batch_applies_a_resources_changes_in_time_order(org, flavour, clock):
    events_ingest(items=[
        ev("e3", "updated", when=at(12, 0), labels={"v": "3"}),
        _created("e1", "srv-1", org, labels={"v": "1"}),
        ev("e2", "updated", when=at(10, 0), labels={"v": "2"}),
    ])
    assert Resource.objects.get().labels == {"v": "3"}


@pytest.mark.parametrize(("extra", "reason"), [
    ({"labels": {f"k{i}": "v" for i in range(21)}}, "labels: at most 20 labels (21 given)."),
    ({"labels": {"": "v"}}, "labels: a label key must be a non-empty string."),
    ({"labels": {"-bad": "v"}}, "labels: label key '-bad': 1 to 63"),
    ({"labels": {"k" * 64: "v"}}, "labels: label key"),
    ({"labels": {"Not.A/DNS/name": "v"}}, "labels: label key"),
    ({"labels": {"team": "x" * 64}}, "labels: label 'team': the value must be at most 63"),
    ({"labels": {"team": 7}}, "labels: label 'team': the value must be a string."),
    ({"labels": {"team": "a\x00b"}}, "labels: label 'team': the value must be"),
    ({"labels": {"t\ud800": "v"}}, "labels: label key"),
    ({"labels": ["team", "a"]}, "labels: labels must be an object"),
    ({"project": "Not A Slug"}, "project: a project is named by its slug"),
    ({"project": 12}, "project: a project is named by its slug"),
    ({}, "an updated event carries project, labels or both."),
])
def test_bad_labels_are_rejected_item_by_item_and_never_sink_the_batch(org, flavour, clock, extra, reason):
    events_ingest(items=[_created("e0", "srv-1", org)])
    result = events_ingest(items=[
        ev("bad", "updated", when=at(10, 0), **extra),
        ev("good", "updated", when=at(10, 0), labels={"ok": "yes"}),
        _created("bad-created", "srv-2", org, **(extra or {"labels": None})),
    ])
    assert statuses(result) == [("bad", "rejected"), ("good", "accepted"), ("bad-created", "rejected")]
    assert result.results[0]["reason"].startswith(reason)
    assert Resource.objects.get(external_id="srv-1").labels == {"ok": "yes"}
    assert not Resource.objects.filter(external_id="srv-2").exists()


def test_a_slug_names_the_project_of_the_resources_own_organisation(org, flavour, clock):
    other = OrganizationFactory()
    theirs = Project.objects.create(organization=other, slug="shared", name="Theirs")
    events_ingest(items=[_created("e1", "srv-1", org, project="shared")])
    mine = Resource.objects.get().project
    assert mine != theirs and mine.organization == org
