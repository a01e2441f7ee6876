"""The tenant-scope check: every statement the test suite sends to PostgreSQL against a tenant-owned table must be
scoped by `tenant_id`, or say why not.

Why a machine and not review: ARCHITECTURE.md promises that every query is tenant-scoped (the isolation between
customers, and a Citus move sharded on `tenant_id` with no rewrite). A forgotten predicate is invisible in a diff
and in every test that uses one tenant. So while pytest runs, every statement is collected where it leaves for the
server (SQLAlchemy's `before_cursor_execute` on every engine, and `HotPool.fetch` for the raw asyncpg hot paths),
parsed with sqlglot (a real SQL parser, PostgreSQL dialect), and judged here.

The rule, for each reference to a tenant-owned table (a table with a `tenant_id` column in the metadata of
backend/tables.py, sync's tables included; derived, never listed by hand) in a SELECT, UPDATE, DELETE, INSERT ...
SELECT, CTE or subquery, the reference is *scoped* when a conjunct of its query's WHERE or of a JOIN's ON says
- `alias.tenant_id = <anchor>`, where an anchor is a value that names one tenant: a bound parameter, a literal,
  a scalar subquery, or the `tenant_id` of a reference in an enclosing query that is itself scoped; or
- an equality join with another reference that is scoped, transitively: `alias.tenant_id = other.tenant_id`,
  `JOIN ... USING (tenant_id)`, or a key join `alias.id = other.alias_id` (the rows one scoped row points at
  belong to its tenant). A derived table (subquery, CTE) counts as scoped when every tenant reference inside it
  is, and it anchors only when it holds one.
An INSERT into a tenant-owned table is scoped when it sets `tenant_id` (and its SELECT, if any, is scoped).
A predicate under OR, IN or ANY does not scope (it may name many tenants).

Two things pass without a predicate, both explicit:
- a statement whose text carries `/* all-tenants: <why> */`: work that is cross-tenant by design (scheduler
  sweeps, the queue's claims). The reason is in the SQL, so it reaches the server's logs too;
- a statement whose fingerprint is in `ALLOWED` below, with its reason (for SQL that cannot carry a comment;
  empty today).
The ORM's unit of work is trusted for the statements of a flush and of a refresh: it writes and rereads only rows
the session holds, and those were loaded by statements this check has judged (or inserted with their tenant).
SQL written in tests/ (a test's setup, assertions, a clock moved by hand) and in migrations is not judged: the
nearest frame of ours on the stack decides who wrote a statement.
"""

from __future__ import annotations

import contextvars
import hashlib
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import greenlet
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

MARKER = re.compile(r"/\*\s*all-tenants:\s*(?P<why>[^*]+?)\s*\*/")

# Fingerprint -> why this statement passes without a tenant_id predicate. Keep it short: prefer the comment marker
# in SQL we own.
ALLOWED: dict[str, str] = {}

_QUERY = (exp.Select, exp.SetOperation, exp.Update, exp.Delete, exp.Insert)


@dataclass(frozen=True, slots=True)
class Unscoped:
    """One reference to a tenant-owned table that nothing pins to one tenant."""

    table: str
    alias: str
    why: str = "no tenant_id predicate"

    def __str__(self) -> str:
        name = self.table if self.alias == self.table else f"{self.table} AS {self.alias}"
        return f"{name}: {self.why}"


@dataclass(slots=True)
class _Source:
    """A row source of one query level: a tenant table, a derived table, or anything else."""

    kind: str  # "tenant" | "derived" | "plain"
    table: str
    alias: str
    scoped: bool = False
    has_tenant: bool = False  # derived: holds at least one tenant reference (else it anchors nothing)


@dataclass(slots=True)
class _Frame:
    sources: dict[str, _Source] = field(default_factory=dict)


class Checker:
    """Judges statements against one set of tenant-owned table names. Results are cached by statement text: the
    suite sends the same few thousand texts hundreds of thousands of times."""

    def __init__(self, tenant_tables: Iterable[str]) -> None:
        self.tenant_tables = frozenset(tenant_tables)
        self._cache: dict[str, list[Unscoped]] = {}

    def check(self, sql: str) -> list[Unscoped]:
        """The unscoped references of one statement (empty: fine, or marked all-tenants, or not DML)."""
        cached = self._cache.get(sql)
        if cached is None:
            cached = self._cache[sql] = self._judge(sql)
        return cached

    def _judge(self, sql: str) -> list[Unscoped]:
        if MARKER.search(sql):
            return []
        if not any(name in sql for name in self.tenant_tables):
            return []  # cheap: most statements (BEGIN, SET, SAVEPOINT) name no tenant table at all
        try:
            statements = sqlglot.parse(sql, read="postgres")
        except ParseError as error:
            return [Unscoped("?", "?", f"unparsable, so unjudged: {str(error).splitlines()[0]}")]
        findings: list[Unscoped] = []
        for statement in statements:
            if statement is None or not isinstance(statement, _QUERY):
                continue  # DDL, SET, transaction control
            if fingerprint_of(statement) in ALLOWED:
                continue
            self._query(statement, [], {}, findings)
        return findings

    # -- one query level ------------------------------------------------------------------------------------------

    def _query(self, node: exp.Expression, outer: list[_Frame], ctes: dict[str, _Source], out: list[Unscoped]) -> bool:
        """Judge a query (and everything nested in it); True when every tenant reference in it is scoped."""
        ctes = dict(ctes)
        ok = True
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                name = cte.alias_or_name
                ctes[name] = _Source("derived", name, name, scoped=True, has_tenant=False)  # recursive self-reference
                found = len(out)
                cte_ok = self._query(cte.this, outer, ctes, out)
                ctes[name] = _Source("derived", name, name, scoped=cte_ok, has_tenant=self._has_tenant(cte.this))
                ok = ok and cte_ok and len(out) == found
        if isinstance(node, exp.SetOperation):
            left = self._query(node.this, outer, ctes, out)
            right = self._query(node.expression, outer, ctes, out)
            return ok and left and right
        if isinstance(node, exp.Insert):
            return self._insert(node, outer, ctes, out) and ok
        if not isinstance(node, exp.Select | exp.Update | exp.Delete):
            return ok

        frame = _Frame()
        conditions: list[exp.Expression] = []
        using_edges: list[tuple[str, str]] = []
        for source_node, join in self._sources(node):
            source = self._source(source_node, outer, ctes, out)
            if source.kind == "derived" and not source.scoped:
                ok = False
            if join is not None:
                on = join.args.get("on")
                if on is not None:
                    conditions.append(on)
                for column in join.args.get("using") or []:
                    if column.name == "tenant_id":
                        using_edges.extend((source.alias, earlier) for earlier in frame.sources)
            frame.sources[source.alias] = source
        where = node.args.get("where")
        if isinstance(where, exp.Where):
            conditions.append(where.this)

        self._scope(frame, outer, conditions, using_edges)
        for source in frame.sources.values():
            if source.kind == "tenant" and not source.scoped:
                out.append(Unscoped(source.table, source.alias))
                ok = False

        # Subqueries in expressions (SELECT list, WHERE, ON, HAVING, SET, RETURNING) see this level's sources.
        inner = [*outer, frame]
        for nested in self._nested_queries(node):
            ok = self._query(nested, inner, ctes, out) and ok
        return ok

    def _insert(self, node: exp.Insert, outer: list[_Frame], ctes: dict[str, _Source], out: list[Unscoped]) -> bool:
        target = node.this
        table = target.this if isinstance(target, exp.Schema) else target
        ok = True
        if isinstance(table, exp.Table) and table.name in self.tenant_tables:
            columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
            if "tenant_id" not in columns:
                out.append(Unscoped(table.name, table.alias_or_name, "an INSERT that does not set tenant_id"))
                ok = False
        source = node.args.get("expression")
        if isinstance(source, _QUERY):
            ok = self._query(source, outer, ctes, out) and ok
        elif source is not None:
            for nested in self._nested_queries(source):
                ok = self._query(nested, outer, ctes, out) and ok
        return ok

    def _sources(self, node: exp.Expression) -> Iterator[tuple[exp.Expression, exp.Join | None]]:
        if isinstance(node, exp.Update | exp.Delete):
            yield node.this, None
        from_ = node.args.get("from_")
        if isinstance(from_, exp.From):
            yield from_.this, None
        for extra in node.args.get("using") or []:  # DELETE ... USING
            yield extra, None
        for join in node.args.get("joins") or []:
            yield join.this, join

    def _source(
        self, node: exp.Expression, outer: list[_Frame], ctes: dict[str, _Source], out: list[Unscoped]
    ) -> _Source:
        alias = node.alias_or_name
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            name = node.name
            if name in ctes and not node.args.get("db"):
                cte = ctes[name]
                return _Source("derived", name, alias, scoped=cte.scoped, has_tenant=cte.has_tenant)
            if name in self.tenant_tables:
                return _Source("tenant", name, alias)
            return _Source("plain", name, alias)
        if isinstance(node, exp.Subquery) and isinstance(node.this, _QUERY):
            scoped = self._query(node.this, outer, ctes, out)
            return _Source("derived", alias, alias, scoped=scoped, has_tenant=self._has_tenant(node.this))
        # Table functions (unnest, generate_series, jsonb_to_recordset), VALUES: no tenant rows. A LATERAL
        # subquery is judged as a nested query.
        for nested in self._nested_queries(node, include_self=True):
            self._query(nested, outer, ctes, out)
        return _Source("plain", alias, alias)

    def _has_tenant(self, node: exp.Expression) -> bool:
        return any(t.name in self.tenant_tables for t in node.find_all(exp.Table))

    # -- predicates -------------------------------------------------------------------------------------------------

    def _scope(
        self, frame: _Frame, outer: list[_Frame], conditions: list[exp.Expression], using: list[tuple[str, str]]
    ) -> None:
        """Mark this level's scoped sources: anchored ones, then whatever an equality on tenant_id joins to them."""
        edges: list[tuple[str, str]] = list(using)
        for conjunct in (c for condition in conditions for c in _conjuncts(condition)):
            if not isinstance(conjunct, exp.EQ | exp.NullSafeEQ):
                continue
            key_edge = self._key_edge(conjunct, frame)
            if key_edge is not None:
                edges.append(key_edge)
                continue
            correlated = self._correlated_key(conjunct, frame, outer)
            if correlated is not None:
                frame.sources[correlated].scoped = True
                continue
            for side, other in ((conjunct.this, conjunct.expression), (conjunct.expression, conjunct.this)):
                mine = self._tenant_column(side, frame, outer)
                if mine is None or mine[0] is not frame:
                    continue
                theirs = self._tenant_column(other, frame, outer)
                if theirs is not None:
                    owner, alias = theirs
                    if owner is frame:
                        edges.append((mine[1], alias))
                    elif _anchors(owner.sources[alias]):
                        frame.sources[mine[1]].scoped = True
                elif _constant(other):
                    frame.sources[mine[1]].scoped = True
        for source in frame.sources.values():
            if source.kind == "derived" and not source.has_tenant:
                source.scoped = False  # a derived table without tenant rows names no tenant: it anchors nothing
        changed = True
        while changed:
            changed = False
            for a, b in edges:
                for x, y in ((a, b), (b, a)):
                    sx, sy = frame.sources.get(x), frame.sources.get(y)
                    if sx is not None and sy is not None and _anchors(sy) and not sx.scoped:
                        sx.scoped = changed = True

    def _key_edge(self, conjunct: exp.Expression, frame: _Frame) -> tuple[str, str] | None:
        """`a.x = b.y` between two sources of this level: rows of one are those the other's rows point at (a
        foreign key within the tenant), so a scoped side scopes the other."""
        left, right = conjunct.this, conjunct.expression
        while isinstance(left, exp.Paren | exp.Cast):
            left = left.this
        while isinstance(right, exp.Paren | exp.Cast):
            right = right.this
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            return None
        if left.table in frame.sources and right.table in frame.sources and left.table != right.table:
            return left.table, right.table
        return None

    def _correlated_key(self, conjunct: exp.Expression, frame: _Frame, outer: list[_Frame]) -> str | None:
        """`inner.x = outer.y` with the outer source scoped: a correlated subquery reads what a scoped row names."""
        sides = [conjunct.this, conjunct.expression]
        for i, side in enumerate(sides):
            while isinstance(side, exp.Paren | exp.Cast):
                side = side.this
            sides[i] = side
        left, right = sides
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            return None
        for mine, theirs in ((left, right), (right, left)):
            if mine.table in frame.sources and theirs.table and theirs.table not in frame.sources:
                owner = next((level for level in reversed(outer) if theirs.table in level.sources), None)
                if owner is not None and _anchors(owner.sources[theirs.table]):
                    return mine.table
        return None

    def _tenant_column(self, node: exp.Expression, frame: _Frame, outer: list[_Frame]) -> tuple[_Frame, str] | None:
        """Which level and source a `tenant_id` column names (innermost first, as PostgreSQL resolves it)."""
        while isinstance(node, exp.Paren | exp.Cast):
            node = node.this
        if not isinstance(node, exp.Column) or node.name != "tenant_id":
            return None
        qualifier = node.table
        for level in [frame, *reversed(outer)]:
            if qualifier:
                if qualifier in level.sources:
                    return level, qualifier
                continue
            candidates = [a for a, s in level.sources.items() if s.kind == "tenant" or s.has_tenant]
            if len(candidates) == 1:
                return level, candidates[0]
        return None

    def _nested_queries(self, node: exp.Expression, include_self: bool = False) -> Iterator[exp.Expression]:
        """The nearest query nodes below `node` that are not its FROM/JOIN sources or its CTEs (judged already)."""
        skip: set[int] = set()
        with_ = node.args.get("with_")
        if with_ is not None:
            skip.add(id(with_))
        for source_node, _join in self._sources(node) if isinstance(node, exp.Select | exp.Update | exp.Delete) else []:
            if isinstance(source_node, exp.Table | exp.Subquery) and (
                isinstance(source_node, exp.Table) or isinstance(source_node.this, _QUERY)
            ):
                skip.add(id(source_node))
        if isinstance(node, exp.Insert):
            skip.add(id(node.this))
        stack = list(node.iter_expressions()) if not include_self else [node]
        while stack:
            current = stack.pop()
            if id(current) in skip:
                continue
            if isinstance(current, _QUERY) and (current is not node or include_self):
                yield current
                continue
            stack.extend(current.iter_expressions())


def _conjuncts(condition: exp.Expression) -> Iterator[exp.Expression]:
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        yield from _conjuncts(condition.this)
        yield from _conjuncts(condition.expression)
    else:
        yield condition


def _anchors(source: _Source) -> bool:
    return source.scoped and (source.kind == "tenant" or source.has_tenant)


def _constant(node: exp.Expression) -> bool:
    """A value naming one tenant: parameters, literals, casts of them, or a scalar subquery (judged on its own)."""
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    return isinstance(node, exp.Subquery | exp.Parameter | exp.Placeholder | exp.Literal)


def fingerprint_of(statement: exp.Expression) -> str:
    """A stable name for a statement's shape: values, parameters and IN-list lengths do not change it."""

    def normalise(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Parameter | exp.Placeholder | exp.Literal):
            return exp.Placeholder()
        if isinstance(node, exp.In) and node.expressions:
            return exp.In(this=node.this, expressions=[exp.Placeholder()])
        return node

    shape = statement.copy().transform(normalise).sql(dialect="postgres", comments=False)
    return hashlib.sha256(shape.encode()).hexdigest()[:12]


def fingerprint(sql: str) -> str:
    statement = sqlglot.parse_one(sql, read="postgres")
    return fingerprint_of(statement)


# -- the pytest plugin: collect what the suite sends, fail the run on what is unscoped ---------------------------------

_FLUSHING: contextvars.ContextVar[bool] = contextvars.ContextVar("tenant_scope_flushing", default=False)


def tenant_tables() -> frozenset[str]:
    """Every table with a NOT NULL tenant_id column, read from the metadata Alembic compares against. A nullable
    tenant_id (the queue's background_jobs) is a label on infrastructure rows, some of which belong to no tenant:
    the table is shared by design, and its workers claim across tenants."""
    from backend.tables import Base, sync_metadata

    tables = [*Base.metadata.tables.values(), *sync_metadata.tables.values()]
    return frozenset(t.name for t in tables if "tenant_id" in t.c and not t.c["tenant_id"].nullable)


@dataclass(slots=True)
class Offence:
    sql: str
    findings: list[Unscoped]
    tests: list[str] = field(default_factory=list)
    count: int = 0


class Collector:
    """Statements in, offences out; `current` names the test that is running (setup and teardown included)."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.current = "(before the first test)"
        self.offences: dict[str, Offence] = {}
        self.statements = 0

    def statement(self, sql: str) -> None:
        self.statements += 1
        if _FLUSHING.get() and sql.lstrip()[:6].upper() in {"UPDATE", "DELETE", "SELECT"}:
            # the unit of work writes (and a refresh rereads) rows the session holds: loaded by statements judged
            # here, or inserted with their tenant
            return
        findings = self.checker.check(sql)
        if not findings or not _sent_by_the_product():
            return
        offence = self.offences.get(sql)
        if offence is None:
            offence = self.offences[sql] = Offence(sql, findings)
        offence.count += 1
        if len(offence.tests) < 3 and self.current not in offence.tests:
            offence.tests.append(self.current)

    def forget(self, sql: str) -> Offence | None:
        """Take back an offence (the checker's own tests send one on purpose)."""
        return self.offences.pop(sql, None)

    def report(self) -> list[str]:
        lines: list[str] = []
        for offence in sorted(self.offences.values(), key=lambda o: o.tests[0] if o.tests else ""):
            sql = " ".join(offence.sql.split())
            lines.append(f"- {sql[:600]}{' ...' if len(sql) > 600 else ''}")
            lines.append(f"    fingerprint {_safe_fingerprint(offence.sql)}, sent {offence.count}x")
            lines.extend(f"    unscoped: {finding}" for finding in offence.findings)
            lines.extend(f"    sent by: {test}" for test in offence.tests)
        return lines


_REPO = Path(__file__).resolve().parent.parent
_PRODUCT = tuple(str(_REPO / name) + "/" for name in ("backend", "sync", "geo"))
_NOT_JUDGED = (str(_REPO / "tests") + "/", str(_REPO / "backend" / "db" / "migrations") + "/")


def _sent_by_the_product() -> bool:
    """Was the statement written in backend/ or sync/ (judged), rather than in tests/ (a test's own setup, its
    assertions, a clock moved by hand) or in a migration (schema work spans every tenant)? The nearest frame of
    ours decides. SQLAlchemy's async layer runs the statement in a greenlet whose caller (the awaiting coroutine)
    is found through the parent greenlet's suspended frame."""
    frame: FrameType | None = sys._getframe(2)
    current: Any = greenlet.getcurrent()
    while True:
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith(_NOT_JUDGED) and filename != __file__:
                return False
            if filename.startswith(_PRODUCT) and not filename.endswith(("db/engine.py", "db/hotpool.py")):
                return True
            frame = frame.f_back
        current = current.parent
        if current is None:
            return True  # no frame of ours: judge it
        frame = current.gr_frame


def _safe_fingerprint(sql: str) -> str:
    try:
        return fingerprint(sql)
    except ParseError:
        return "(unparsable)"


COLLECTOR: Collector | None = None


def install() -> Collector:
    """Hook every engine (SQLAlchemy's before_cursor_execute, class-wide, so the app's, the factories' and the
    CLI's engines all count) and the hot pool's raw asyncpg paths; mark the ORM's flushes."""
    global COLLECTOR
    if COLLECTOR is not None:
        return COLLECTOR
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from backend.db.hotpool import HotPool

    collector = COLLECTOR = Collector(Checker(tenant_tables()))

    def before_cursor_execute(
        _conn: object, _cursor: object, statement: str, _params: object, _context: object, _many: bool
    ) -> None:
        collector.statement(statement)

    event.listen(Engine, "before_cursor_execute", before_cursor_execute)

    original_fetch = HotPool.fetch
    original_fetch_knn = HotPool.fetch_knn

    async def fetch(self: HotPool, query: str, *args: Any) -> list[Any]:
        collector.statement(query)
        return await original_fetch(self, query, *args)

    async def fetch_knn(self: HotPool, query: str, *args: Any) -> list[Any]:
        collector.statement(query)
        # the first try goes through fetch again: judged twice, counted once more; harmless
        return await original_fetch_knn(self, query, *args)

    HotPool.fetch = fetch  # type: ignore[method-assign]
    HotPool.fetch_knn = fetch_knn  # type: ignore[method-assign]

    original_flush = Session._flush

    def _flush(self: Session, objects: Any = None) -> None:
        token = _FLUSHING.set(True)
        try:
            original_flush(self, objects)
        finally:
            _FLUSHING.reset(token)

    Session._flush = _flush  # type: ignore[method-assign]

    original_refresh = Session.refresh

    def refresh(self: Session, instance: object, *args: Any, **kwargs: Any) -> None:
        token = _FLUSHING.set(True)  # a refresh reloads a row the session holds, by its identity
        try:
            original_refresh(self, instance, *args, **kwargs)
        finally:
            _FLUSHING.reset(token)

    Session.refresh = refresh  # type: ignore[method-assign]
    return collector


class TenantScopePlugin:
    """Registered by tests/conftest.py: names the running test, and fails the run listing what was unscoped."""

    def __init__(self) -> None:
        self.collector = install()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        self.collector.current = item.nodeid
        yield
        self.collector.current = "(between tests: a session fixture's teardown)"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.collector.offences and exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.collector.offences:
            return
        terminalreporter.section("tenant scope: statements not scoped by tenant_id", red=True)
        terminalreporter.line(
            "Each statement below touches a tenant-owned table without a tenant_id predicate (tests/tenant_scope.py"
            " says what counts). Add the predicate, or mark SQL that is cross-tenant by design with"
            " /* all-tenants: <why> */."
        )
        for line in self.collector.report():
            terminalreporter.line(line)
