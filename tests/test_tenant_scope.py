# ruff: noqa: S608  (the statements built here are parsed, never sent)
"""The tenant-scope checker itself (tests/tenant_scope.py): generated statement shapes whose verdict a small model
computes on its own, so the check provably fails on what it must refuse, and the hooks provably see what the app
sends (through SQLAlchemy and through the hot pool)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.db.engine import Database
from tests import tenant_scope
from tests.tenant_scope import Checker, fingerprint

TENANT = ["visits", "pois", "jobs", "work_items", "photos"]
PLAIN = ["tenants", "sync_horizon"]
CHECKER = Checker(TENANT)


@dataclass
class Shape:
    sql: str
    scoped: bool  # the model's verdict: every tenant reference is pinned to one tenant
    has_tenant: bool


@st.composite
def selects(draw: st.DrawFn, prefix: str | None = None) -> Shape:
    """A SELECT over 1-3 tables joined in a chain; some references anchored by `tenant_id = $1`, maybe under OR."""
    prefix = prefix or draw(st.sampled_from(["a", "t", "w_", "pois_"]))  # an alias may look like a table's name
    n = draw(st.integers(1, 3))
    tables = [draw(st.sampled_from(TENANT + PLAIN)) for _ in range(n)]
    aliases = [f"{prefix}{i}" for i in range(n)]
    is_tenant = [t in TENANT for t in tables]
    anchored = {i for i in draw(st.sets(st.integers(0, n - 1))) if is_tenant[i]}
    under_or = draw(st.booleans()) and bool(anchored)
    edges: list[tuple[int, int]] = []
    parts = [f"SELECT {aliases[0]}.id FROM {tables[0]} AS {aliases[0]}"]
    for i in range(1, n):
        kinds = ["key", "none", "or"] + (["tenant"] if is_tenant[i] and is_tenant[i - 1] else [])
        kind = draw(st.sampled_from(kinds))
        a, b = aliases[i], aliases[i - 1]
        on = {
            "key": f"{a}.id = {b}.ref_id",
            "tenant": f"{a}.tenant_id = {b}.tenant_id",
            "none": "true",
            "or": f"({a}.id = {b}.ref_id OR {a}.id IS NULL)",
        }[kind]
        if kind in ("key", "tenant"):
            edges.append((i, i - 1))
        parts.append(f"JOIN {tables[i]} AS {a} ON {on}")
    anchors = [f"{aliases[i]}.tenant_id = ${k + 1}" for k, i in enumerate(sorted(anchored))]
    if anchors:
        glue = " OR " if under_or and len(anchors) > 1 else " AND "
        where = glue.join(anchors)
        if under_or and len(anchors) == 1:
            where = f"({where} OR {aliases[0]}.id IS NOT NULL)"
        parts.append(f"WHERE {where} AND {aliases[0]}.id IS NOT NULL")
    scoped = set() if under_or else set(anchored)
    changed = True
    while changed:  # the model: scoping flows along key and tenant joins, through tenant tables only
        changed = False
        for x, y in edges:
            for p, q in ((x, y), (y, x)):
                if q in scoped and p not in scoped and is_tenant[p]:
                    scoped.add(p)
                    changed = True
    verdict = all(i in scoped for i in range(n) if is_tenant[i])
    return Shape(" ".join(parts), verdict, any(is_tenant))


@st.composite
def statements(draw: st.DrawFn) -> Shape:
    inner = draw(selects())
    form = draw(st.sampled_from(["plain", "cte", "derived", "exists", "insert_select", "union"]))
    if form == "plain":
        return inner
    if form == "cte":
        return Shape(f"WITH c AS ({inner.sql}) SELECT * FROM c", inner.scoped, inner.has_tenant)
    if form == "derived":
        # a tenant table joined on tenant_id to a derived table: scoped when the derived table is, and holds one
        scoped = inner.scoped and inner.has_tenant
        sql = f"SELECT v.id FROM ({inner.sql}) AS d JOIN visits AS v ON v.tenant_id = d.tenant_id"
        return Shape(sql, scoped, True)
    if form == "union":
        other = draw(selects(prefix="b"))
        return Shape(f"{inner.sql} UNION ALL {other.sql}", inner.scoped and other.scoped, True)
    if form == "insert_select":
        sets_tenant = draw(st.booleans())
        columns = "(tenant_id, id)" if sets_tenant else "(id, name)"
        return Shape(f"INSERT INTO photos {columns} {inner.sql}", sets_tenant and inner.scoped, True)
    outer_scoped = draw(st.booleans())
    where = "o.tenant_id = $9" if outer_scoped else "o.id = $9"
    return Shape(
        f"SELECT o.id FROM jobs AS o WHERE {where} AND EXISTS ({inner.sql})", outer_scoped and inner.scoped, True
    )


@given(selects())
@settings(max_examples=300)
def test_selects_are_judged_as_the_model_says(shape: Shape) -> None:
    assert (not CHECKER.check(shape.sql)) == shape.scoped, shape.sql


@given(statements())
@settings(max_examples=300)
def test_nested_shapes_are_never_passed_when_unscoped(shape: Shape) -> None:
    """CTEs, derived tables, unions, INSERT ... SELECT, EXISTS: an unscoped reference anywhere fails the
    statement."""
    assert (not CHECKER.check(shape.sql)) == shape.scoped, shape.sql


@given(st.sampled_from(TENANT), st.booleans(), st.sampled_from(["UPDATE", "DELETE"]), st.text("xyz", min_size=1))
def test_updates_and_deletes_need_the_predicate_on_their_target(
    table: str, scoped: bool, verb: str, alias: str
) -> None:
    where = f"{alias}.tenant_id = $1 AND {alias}.id = $2" if scoped else f"{alias}.id = $2"
    sql = (
        f"UPDATE {table} AS {alias} SET note = $3 WHERE {where}"
        if verb == "UPDATE"
        else f"DELETE FROM {table} AS {alias} WHERE {where}"
    )
    assert (not CHECKER.check(sql)) == scoped, sql


@given(st.sampled_from(TENANT), st.booleans())
def test_an_insert_must_set_tenant_id(table: str, sets_it: bool) -> None:
    columns = "(id, tenant_id, name)" if sets_it else "(id, name)"
    sql = f"INSERT INTO {table} {columns} VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    assert (not CHECKER.check(sql)) == sets_it


@given(selects())
def test_the_marker_passes_a_statement_and_only_the_marker(shape: Shape) -> None:
    marked = shape.sql.replace("SELECT", "SELECT /* all-tenants: a sweep over every tenant */", 1)
    assert CHECKER.check(marked) == []
    not_a_marker = shape.sql.replace("SELECT", "SELECT /* every tenant */", 1)  # a comment, but not the marker
    assert (not CHECKER.check(not_a_marker)) == shape.scoped


def test_known_shapes() -> None:
    scoped = [
        "SELECT 1 FROM visits WHERE tenant_id = $1 AND id = $2",  # unqualified, one table
        "SELECT v.id FROM visits v JOIN pois p ON p.id = v.poi_id WHERE v.tenant_id = $1",
        "SELECT v.id FROM visits v JOIN pois p USING (tenant_id) WHERE p.tenant_id = $1",
        "SELECT * FROM jobs WHERE tenant_id = (SELECT tenant_id FROM photos WHERE tenant_id = $1 LIMIT 1)",
        "WITH x AS (UPDATE jobs SET n = 1 WHERE tenant_id = $1 RETURNING id) SELECT * FROM x",
        "SELECT j.id FROM jobs j WHERE j.tenant_id = $1"
        " AND j.id IN (SELECT p.job_id FROM photos p WHERE p.job_id = j.id)",  # correlated on a key
        "SELECT count(*) FROM tenants",
        "SET LOCAL lock_timeout = '1s'",
    ]
    unscoped = [
        "SELECT 1 FROM visits WHERE id = $1",
        "SELECT 1 FROM visits WHERE tenant_id = ANY($1)",  # many tenants
        "SELECT 1 FROM visits WHERE tenant_id = $1 OR id = $2",
        "SELECT v.id FROM visits v JOIN pois p ON p.id = v.poi_id WHERE p.name = $1",
        "SELECT j.id FROM jobs j WHERE j.tenant_id = $1 AND EXISTS (SELECT 1 FROM photos p WHERE p.sha256 = $2)",
        "UPDATE jobs SET n = 1 FROM photos WHERE jobs.tenant_id = $1",
        "DELETE FROM visits USING pois WHERE visits.poi_id = pois.id AND pois.tenant_id = visits.tenant_id",
        "INSERT INTO visits VALUES ($1, $2)",
    ]
    for sql in scoped:
        assert CHECKER.check(sql) == [], sql
    for sql in unscoped:
        assert CHECKER.check(sql), sql


def test_fingerprints_ignore_values_and_list_lengths() -> None:
    a = fingerprint("SELECT 1 FROM visits WHERE id IN ($1, $2) AND note = 'x'")
    b = fingerprint("SELECT 1 FROM visits WHERE id IN ($1, $2, $3, $4) AND note = 'y'")
    c = fingerprint("SELECT 1 FROM visits WHERE poi_id IN ($1)")
    assert a == b != c


def test_the_tenant_tables_come_from_the_metadata() -> None:
    tables = tenant_scope.tenant_tables()
    assert {"visits", "pois", "jobs", "sync_changes", "work_items"} <= tables
    assert "tenants" not in tables
    assert "background_jobs" not in tables  # nullable tenant_id: the queue is shared by design


async def _raw_sql(database: Database) -> None:
    async with database.sessions() as session:
        await session.execute(text("SELECT 1 FROM visits WHERE id = gen_random_uuid()"))
    await database.hot.fetch("SELECT 1 FROM pois WHERE name = 'no such merchant'")


async def test_the_hooks_see_what_the_product_sends(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Statements sent from the product (here: a function that pretends to live in backend/) are collected from
    both the SQLAlchemy engine and the hot pool, attributed to the running test; SQL written in tests is not."""
    collector = tenant_scope.COLLECTOR
    assert collector is not None
    orm_sql = "SELECT 1 FROM visits WHERE id = gen_random_uuid()"
    hot_sql = "SELECT 1 FROM pois WHERE name = 'no such merchant'"
    await _raw_sql(database)  # written here, in tests/: not judged
    assert collector.forget(orm_sql) is None
    assert collector.forget(hot_sql) is None
    monkeypatch.setattr(tenant_scope, "_sent_by_the_product", lambda: True)
    await _raw_sql(database)
    orm, hot = collector.forget(orm_sql), collector.forget(hot_sql)
    assert orm is not None
    assert hot is not None
    assert "test_the_hooks_see_what_the_product_sends" in orm.tests[0]
    assert "test_the_hooks_see_what_the_product_sends" in hot.tests[0]


def test_an_unscoped_statement_fails_the_run_and_is_listed_with_its_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin's end of run: offences turn a green run red, and the summary names statement and test."""
    monkeypatch.setattr(tenant_scope, "_sent_by_the_product", lambda: True)
    plugin = tenant_scope.TenantScopePlugin.__new__(tenant_scope.TenantScopePlugin)
    plugin.collector = tenant_scope.Collector(CHECKER)  # not the run's own collector
    plugin.collector.current = "tests/somewhere.py::test_it"
    plugin.collector.statement("SELECT 1 FROM jobs WHERE tenant_id = $1")  # scoped: no offence
    session = SimpleNamespace(exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session, 0)  # type: ignore[arg-type]
    assert session.exitstatus == pytest.ExitCode.OK
    plugin.collector.statement("DELETE FROM jobs WHERE id = $1")
    plugin.pytest_sessionfinish(session, 0)  # type: ignore[arg-type]
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    lines: list[str] = []
    reporter = SimpleNamespace(section=lambda *a, **k: lines.append(str(a[0])), line=lines.append)
    plugin.pytest_terminal_summary(reporter)
    text = "\n".join(lines)
    assert "DELETE FROM jobs WHERE id = $1" in text
    assert "unscoped: jobs: no tenant_id predicate" in text
    assert "sent by: tests/somewhere.py::test_it" in text
