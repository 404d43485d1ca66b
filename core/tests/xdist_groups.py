"""`--dist loadgroup` that works with pytest 9: a module marked
`pytestmark = pytest.mark.xdist_group("name")` (or in a list) runs whole on one worker.

pytest-xdist 3.8 groups tests by a suffix it adds to each item's node id in the worker
(`item._nodeid = "…@name"`); pytest 9 builds node ids from `_id`, so the suffix never
appears and a group's tests were spread over the workers: the demo world was seeded on
both, the Gnocchi peer started on both. This scheduler reads the group from the module's
source in the controller instead (the controller collects nothing; it sees node ids).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from xdist.scheduler.loadgroup import LoadGroupScheduling

_MODULE_GROUP = re.compile(r"^pytestmark\s*=.*xdist_group\(\s*(?:name\s*=\s*)?[\"']([\w.-]+)[\"']", re.M)


@cache
def module_group(path: str) -> str | None:
    try:
        found = _MODULE_GROUP.search(Path(path).read_text())
    except OSError:
        return None
    return found.group(1) if found else None


class ModuleGroupScheduling(LoadGroupScheduling):
    def _split_scope(self, nodeid: str) -> str:
        group = module_group(str(Path(self.config.rootpath) / nodeid.split("::")[0]))
        return f"group:{group}" if group else super()._split_scope(nodeid)
