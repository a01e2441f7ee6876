"""Every domain's periodic work, collected in one place (as backend/tables.py collects the tables).

A domain declares `PERIODIC: list[Periodic]` in its own `tasks.py`; add the module here and every
`groundwork worker` runs it (backend/queue/scheduler.py), at most once per period across all of them.
"""

from __future__ import annotations

from backend.offline import tasks as offline_tasks
from backend.queue.scheduler import Periodic
from backend.tasks import tasks as tasks_tasks

PERIODIC: list[Periodic] = [
    *offline_tasks.PERIODIC,
    *tasks_tasks.PERIODIC,
]
