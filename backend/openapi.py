"""The OpenAPI document as the contract the phones are built against: it must say what the server does.

Two things Litestar's generator gets wrong for us are fixed here, in one place:
- Request bodies are documented by msgspec's own JSON Schema generator (`DecodedStructSchema`), the same type
  information msgspec's decoder enforces, instead of Litestar's re-derivation from type hints.
- The answers that come from the app's machinery rather than from a route (`finish_openapi`): the size cap and
  the content-type check on every JSON body (413, 415), the pool's bounded waits (503), and Litestar's own 400
  entry, which our handlers never answer in that shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Reference, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from backend.errors import PROBLEM_JSON, problem_description

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PROBLEM_REF = "#/components/schemas/Problem"


def _is_decoded_strictly(annotation: Any) -> bool:
    config = getattr(annotation, "__struct_config__", None)
    return config is not None and bool(config.forbid_unknown_fields)


class DecodedStructSchema(OpenAPISchemaPlugin):
    """Request shapes (Structs that refuse unknown fields) documented by msgspec's JSON Schema generator.

    Litestar's struct plugin rebuilds each schema from the type hints and loses what the decoder enforces: unknown
    fields are refused but nothing says `additionalProperties: false`; constraints on list items
    (`list[Annotated[str, Meta(max_length=64)]]`) vanish; bounds of zero (`ge=0`) are dropped as falsy. msgspec
    generates the schema from the very type info its decoder is built from, so the two cannot drift. Nested
    Structs and enums become references through Litestar's registry, so component names stay Litestar's.
    Answers keep Litestar's plugin: msgspec documents a `datetime` without `tz=True` as a bare string, while
    Litestar's `format: date-time` is what we send (every stored time is aware UTC).
    """

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return not field_definition.is_union and _is_decoded_strictly(field_definition.annotation)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        struct = field_definition.annotation
        # Registered before its fields are resolved, so a shape that refers to itself becomes a reference.
        schema: Schema = schema_creator.schema_registry.get_schema_for_field_definition(field_definition)
        (top,), components = msgspec.json.schema_components([struct], ref_template="{name}")
        generated = dict(components[top["$ref"]])
        named = _nameable_types(struct)

        def resolve(node: Any) -> Any:
            if isinstance(node, list):
                return [resolve(item) for item in node]
            if not isinstance(node, dict):
                return node
            if "$ref" in node:
                reference = schema_creator.for_field_definition(FieldDefinition.from_annotation(named[node["$ref"]]))
                rest = {key: resolve(value) for key, value in node.items() if key != "$ref"}
                return {"allOf": [reference], **rest} if rest else reference
            return {key: resolve(value) for key, value in node.items()}

        if generated.pop("type") != "object":
            raise TypeError(f"{struct!r}: only object-shaped request Structs are supported (not array_like)")
        schema.type = OpenAPIType.OBJECT
        schema.title = generated.pop("title")
        schema.description = generated.pop("description", None)
        schema.properties = resolve(generated.pop("properties", {}))
        schema.required = generated.pop("required", [])
        schema.additional_properties = generated.pop("additionalProperties")
        if generated:
            raise TypeError(f"{struct!r}: keywords this plugin does not carry: {sorted(generated)}")
        return schema


def _nameable_types(root: type) -> dict[str, type]:
    """The classes msgspec may name in the components of `root`'s schema, by both names it uses (the class name,
    or the module path when two classes share a name)."""
    found: dict[str, type] = {}
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, tuple | list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, msgspec.Struct) or id(node) in seen:
            return
        seen.add(id(node))
        cls = getattr(node, "cls", None)
        if isinstance(cls, type):
            found[cls.__name__] = cls
            found[re.sub(r"[^a-zA-Z0-9.\-_]", "_", f"{cls.__module__}.{cls.__qualname__}")] = cls
        for field in msgspec.structs.fields(node):
            walk(getattr(node, field.name))

    walk(msgspec.inspect.type_info(root))
    return found


def replayed(data_container: Any, description: str) -> dict[int, ResponseSpec]:
    """The 200 of an idempotent create: a retry of the same client id answers what was stored, in the same shape
    as the 201 of the first time."""
    return {200: ResponseSpec(data_container=data_container, description=description, generate_examples=False)}


def _problem(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=problem_description(status, json_body=True),
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(_PROBLEM_REF))},
    )


def _operations(openapi: OpenAPI) -> Iterator[Operation]:
    for item in (openapi.paths or {}).values():
        for method in _HTTP_METHODS:
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                yield operation


def _takes_json(operation: Operation) -> bool:
    body = operation.request_body
    return body is not None and not isinstance(body, Reference) and "application/json" in (body.content or {})


def _is_litestar_400(response: OpenAPIResponse | Reference) -> bool:
    return isinstance(response, OpenAPIResponse) and PROBLEM_JSON not in (response.content or {})


def finish_openapi(openapi: OpenAPI) -> OpenAPI:
    """Add the answers of the app's own machinery to every operation they can reach, and drop Litestar's 400.

    A pass over the built document because Litestar cannot express these at their source: it documents a
    ValidationException 400 of its own shape on every route with a parameter or a body, with no way to turn it
    off (our handlers answer those as 422 problems: backend/errors.py); and what applies to every route (the body
    size cap, the JSON content-type check, the pool's 503) would otherwise be repeated by hand on each route, and
    forgotten on the next one. Routes keep documenting what is theirs (`problems(...)` in `responses=`)."""
    for operation in _operations(openapi):
        responses = operation.responses if operation.responses is not None else {}
        if "400" in responses and _is_litestar_400(responses["400"]):
            del responses["400"]
        wanted = [422, 503]
        if _takes_json(operation):
            wanted += [413, 415]
        for status in wanted:
            responses.setdefault(str(status), _problem(status))
        operation.responses = dict(sorted(responses.items()))
    return openapi
