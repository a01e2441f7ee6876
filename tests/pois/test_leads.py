"""Leads names the columns it reads of merchants and work items rather than import their models (it sits below
pois and tasks): they must be the tables' own columns, of the same types."""

from __future__ import annotations

from sqlalchemy import Table

from backend.leads.service import MERCHANTS, WORK_ITEMS_HELD
from backend.pois.models import Poi
from backend.tasks.models import WorkItem


def test_the_columns_leads_reads_are_the_tables_own() -> None:
    for named, model in ((MERCHANTS, Poi), (WORK_ITEMS_HELD, WorkItem)):
        real = model.__table__
        assert isinstance(real, Table)
        assert named.name == real.name
        for column in named.c:
            assert column.name in real.c, f"{real.name}.{column.name}"
            assert column.type._type_affinity is real.c[column.name].type._type_affinity, column.name
