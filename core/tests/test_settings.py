"""Settings are read top to bottom once: each name is assigned in one place."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR) / "billing_site" / "settings" / "base.py"


def _top_level_assignments(path: Path) -> Counter:
    """Names bound by plain top-level assignments; `+=` and `X[...] = ...` extend a
    shared value and are not counted, nor are branches of an `if` (alternatives)."""
    counts: Counter = Counter()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        counts.update(t.id for t in targets if isinstance(t, ast.Name))
    return counts


def test_no_setting_is_assigned_twice_in_base_settings():
    twice = sorted(name for name, n in _top_level_assignments(BASE).items() if n > 1)
    assert twice == []


def test_each_xdist_worker_gets_its_own_redis_database_counting_down():
    from billing_site.settings.test import per_worker_redis_url

    assert per_worker_redis_url("redis://localhost:6379/15", 0) == "redis://localhost:6379/15"
    assert per_worker_redis_url("redis://localhost:6379/15", 1) == "redis://localhost:6379/14"
    assert per_worker_redis_url("redis://:pw@cache:6380/6", 1) == "redis://:pw@cache:6380/5"
    with pytest.raises(ValueError, match="gw2"):
        per_worker_redis_url("redis://localhost:6379/1", 2)
