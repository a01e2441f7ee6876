"""Every input is bounded at the contract: a machine check, so no future endpoint can forget it.

Walks every request body shape the app decodes (msgspec.inspect, recursively) and every route parameter in the
OpenAPI document, and fails on any text without a length limit and a pattern that refuses U+0000, any integer
or float without bounds on both sides (integers within int64), any list or object without `max_length`, any
datetime that is not aware, and any body shape that is not a `Request` (whose `__post_init__` bounds datetimes
and free-form JSON).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
from litestar import Litestar

from backend.app import ROUTES, openapi_document
from backend.deps import DEPENDENCIES
from mobile_contract.base import INT64_MAX, INT64_MIN, Request

# Shapes whose items are bounded one by one where they become mutations, so one poison row is refused alone
# (a whole-push 422 would wedge the phone's queue). Keep this list short and say where the check is.
_CHECKED_ONE_BY_ONE = {
    "PushBody": "WatermelonDB rows: backend/offline/watermelon.py `_mutation` (json_problem) and the mutation types",
}

_NUL_SAMPLES = ("\x00", "a\x00", "\x00a", "a\x00b", "0\x00", "000000\x00")


def _refuses_nul(pattern: str | None) -> bool:
    return pattern is not None and all(re.search(pattern, sample) is None for sample in _NUL_SAMPLES)


def _violations(t: Any, path: str, seen: set[type], *, free_json: bool = False) -> list[str]:
    # Constraints of Annotated[..., Meta(...)] are hoisted onto the type by msgspec.inspect.
    if isinstance(t, mi.Metadata):
        return _violations(t.type, path, seen, free_json=free_json)
    if isinstance(t, mi.StrType):
        problems = []
        if t.max_length is None:
            problems.append(f"{path}: text without max_length")
        if not _refuses_nul(t.pattern):
            problems.append(f"{path}: text whose pattern does not refuse U+0000 (use ShortText/LongText or a pattern)")
        return problems
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
        if low is None or high is None or low < INT64_MIN or high > INT64_MAX:
            return [f"{path}: integer without bounds within int64 (use Int64/Id64 or ge/le)"]
        return []
    if isinstance(t, mi.FloatType):
        if (t.ge is None and t.gt is None) or (t.le is None and t.lt is None):
            return [f"{path}: float without bounds on both sides"]
        return []
    if isinstance(t, mi.DateTimeType):
        return [] if t.tz is True else [f"{path}: datetime that is not aware (use AwareDatetime)"]
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        problems = [] if t.max_length is not None else [f"{path}: list without max_length"]
        return problems + _violations(t.item_type, f"{path}[]", seen, free_json=free_json)
    if isinstance(t, mi.DictType):
        problems = [] if t.max_length is not None else [f"{path}: object without max_length"]
        problems += _violations(t.key_type, f"{path}{{key}}", seen, free_json=True)
        return problems + _violations(t.value_type, f"{path}{{}}", seen, free_json=True)
    if isinstance(t, mi.UnionType):
        return [v for arm in t.types for v in _violations(arm, path, seen, free_json=free_json)]
    if isinstance(t, mi.StructType):
        if t.cls.__name__ in _CHECKED_ONE_BY_ONE:
            return []
        checked_as = getattr(t.cls, "__checked_as__", None)
        if checked_as is not None:  # decoded leniently, then each item bounded on its own (sync.screen)
            return _violations(mi.type_info(checked_as), path, seen)
        if not issubclass(t.cls, Request):
            return [f"{path}: body shape {t.cls.__name__} is not a mobile_contract Request (no bounds check)"]
        if t.cls in seen:
            return []
        seen.add(t.cls)
        return [v for f in t.fields for v in _violations(f.type, f"{t.cls.__name__}.{f.name}", seen)]
    if isinstance(t, mi.AnyType):
        # Free-form JSON inside a Request is bounded by Request.__post_init__ (depth, size, NUL, numbers).
        return [] if free_json else [f"{path}: a bare Any"]
    if isinstance(t, mi.BoolType | mi.NoneType | mi.UUIDType | mi.EnumType | mi.LiteralType):
        return []
    return [f"{path}: unchecked type {type(t).__name__}"]


def _body_types() -> dict[str, Any]:
    app = Litestar(route_handlers=ROUTES, dependencies=DEPENDENCIES)
    bodies: dict[str, Any] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is not None:
                bodies[f"{sorted(handler.http_methods)} {route.path}"] = data.annotation
    return bodies


def test_every_request_body_is_bounded() -> None:
    bodies = _body_types()
    assert len(bodies) > 15
    problems = []
    for where, annotation in bodies.items():
        found = _violations(mi.type_info(annotation), where, set())
        problems += [f"{where}: {p}" for p in found]
    assert problems == [], "\n".join(problems)


def test_every_request_shape_is_bounded() -> None:
    """Also the shapes only reached through sync mutations' args, and any future Request subclass."""
    import backend.app  # noqa: F401 - imports every domain, so every Request subclass exists

    shapes: list[type[Request]] = []
    pending: list[type[Request]] = [Request]
    while pending:
        cls = pending.pop()
        shapes.append(cls)
        pending.extend(cls.__subclasses__())
    assert len(shapes) > 30
    problems = [
        p for cls in shapes[1:] if cls is not _Loose for p in _violations(mi.type_info(cls), cls.__name__, set())
    ]
    assert problems == [], "\n".join(problems)


def _schema_violations(schema: dict[str, Any], where: str, components: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        target = components.get("schemas", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
        return [] if "enum" in target else [f"{where}: parameter of a component type {schema['$ref']}"]
    if "allOf" in schema:  # an enum component
        return [v for arm in schema["allOf"] for v in _schema_violations(arm, where, components)]
    if "oneOf" in schema or "anyOf" in schema:
        # Litestar puts the constraints of `str | None` beside the arms, not in them.
        outer = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
        arms = schema.get("oneOf") or schema.get("anyOf") or []
        return [v for arm in arms for v in _schema_violations({**outer, **arm}, where, components)]
    kind = schema.get("type")
    if kind == "null" or "enum" in schema or "const" in schema:
        return []
    if kind == "string":
        if schema.get("format") in ("uuid", "date-time"):
            return []
        problems = [] if "maxLength" in schema else [f"{where}: text without maxLength"]
        if not _refuses_nul(schema.get("pattern")):
            problems.append(f"{where}: text whose pattern does not refuse U+0000")
        return problems
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if low is None or high is None or low < INT64_MIN or high > INT64_MAX:
            return [f"{where}: integer without bounds within int64"]
        return []
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        return [] if low is not None and high is not None else [f"{where}: number without bounds"]
    if kind == "array":
        problems = [] if "maxItems" in schema else [f"{where}: list without maxItems"]
        return problems + _schema_violations(schema.get("items", {}), f"{where}[]", components)
    if kind == "boolean":
        return []
    return [f"{where}: unchecked parameter schema {schema}"]


def test_every_route_parameter_is_bounded() -> None:
    document = openapi_document()
    components = document.get("components", {})
    problems = []
    count = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                count += 1
                where = f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
                problems += _schema_violations(parameter["schema"], where, components)
    assert count > 20
    assert problems == [], "\n".join(problems)


class _Loose(Request):
    text: str
    number: int
    ratio: float
    items: list[Annotated[int, msgspec.Meta(ge=0, le=1)]]


def test_the_checks_catch_what_they_must() -> None:
    """The walker itself: an unbounded field of each kind is reported."""
    found = _violations(mi.type_info(_Loose), "Loose", set())
    assert len(found) == 5, found
