"""The suite's modules marked with an xdist group run whole on one worker (pytest 9 dropped
the node-id suffix pytest-xdist 3.8 groups by: core/tests/xdist_groups.py)."""

from __future__ import annotations

from types import SimpleNamespace

from django.conf import settings

from core.tests.xdist_groups import ModuleGroupScheduling, module_group


def _scope(nodeid: str) -> str:
    scheduler = object.__new__(ModuleGroupScheduling)
    scheduler.config = SimpleNamespace(rootpath=settings.BASE_DIR)  # type: ignore[assignment]
    return scheduler._split_scope(nodeid)


def test_a_marked_module_is_one_work_unit_and_other_tests_their_own():
    assert module_group(str(settings.BASE_DIR / "core/tests/test_demo_world.py")) == "demo"
    assert module_group(str(settings.BASE_DIR / "gnocchi_export/tests/test_export.py")) == "gnocchi"
    demo = {_scope(f"core/tests/test_demo_world.py::{name}") for name in ("test_a", "test_b[x]")}
    assert demo == {"group:demo"}
    assert _scope("credits/tests/test_ledger.py::test_x[1]") == "credits/tests/test_ledger.py::test_x[1]"
