"""The OpenAPI document tells the truth about what the server refuses and answers, checked over every operation
and every request shape (not one example each): tests/fuzz does the same with generated requests."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import uuid
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

import mobile_contract
from backend.app import openapi_document
from backend.offline import watermelon
from mobile_contract.auth import Role
from tests.factories import Factory

Client = AsyncTestClient  # type: ignore[type-arg]
DOCUMENT = openapi_document()
METHODS = ("get", "post", "put", "patch", "delete")


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()]


def _concrete(path: str) -> str:
    # Any id will do: a method the path does not have is refused before anything is looked up.
    return path.replace("{step}", "accept").replace("{device_id}", "a-device").format_map(_AnyId())


class _AnyId(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return str(uuid.uuid4())


def _strict_structs() -> list[type[msgspec.Struct]]:
    """Every request shape of the document: the Structs whose decoder refuses unknown fields (the arguments of
    queued mutations are not in it: they travel inside `args`)."""
    names = mobile_contract.__path__
    modules = [importlib.import_module(f"mobile_contract.{m.name}") for m in pkgutil.iter_modules(names)]
    titles = {schema.get("title") for schema in DOCUMENT["components"]["schemas"].values()}
    found: dict[str, type[msgspec.Struct]] = {}
    for module in [*modules, watermelon]:
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, msgspec.Struct)
                and value.__struct_config__.forbid_unknown_fields
                and value.__struct_fields__
                and value.__name__ in titles
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def _comparable(node: Any, names: dict[str, str]) -> Any:
    """A schema with references reduced to the referenced title and `default: null` dropped (Litestar leaves
    out null values), so msgspec's and the document's spellings of the same schema compare equal."""
    if isinstance(node, list):
        return [_comparable(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"ref": names[node["$ref"].rsplit("/", 1)[-1]]}
    if list(node) == ["allOf"] and len(node["allOf"]) == 1:
        return _comparable(node["allOf"][0], names)
    return {key: _comparable(value, names) for key, value in node.items() if not (key == "default" and value is None)}


@pytest.mark.parametrize("struct", _strict_structs(), ids=lambda struct: struct.__qualname__)
def test_every_request_shape_is_documented_as_msgspec_decodes_it(struct: type[msgspec.Struct]) -> None:
    components = DOCUMENT["components"]["schemas"]
    documented = [name for name, schema in components.items() if schema.get("title") == struct.__name__]
    (top,), generated = msgspec.json.schema_components([struct], ref_template="{name}")
    expected = generated[top["$ref"]]
    # Titles are class names; two request shapes sharing one would need a closer look (none do today).
    matches = [name for name in documented if components[name].get("additionalProperties") is False]
    assert len(matches) == 1, f"{struct.__qualname__}: documented as {documented}"
    document_names = {name: components[name].get("title", name) for name in components}
    msgspec_names = {name: schema.get("title", name) for name, schema in generated.items()}
    assert _comparable(components[matches[0]], document_names) == _comparable(expected, msgspec_names)
    assert components[matches[0]]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("path", "method"), [(path, method) for path, method, op in _operations() if "201" in op["responses"]]
)
def test_a_create_documents_the_200_of_its_replay_with_the_same_body(path: str, method: str) -> None:
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert "200" in responses, f"{method.upper()} {path} answers 200 to a replay but documents only 201"
    assert responses["200"]["content"] == responses["201"]["content"]


def test_no_answer_is_documented_in_litestars_own_error_shape() -> None:
    for path, method, op in _operations():
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert list(response.get("content", {})) == ["application/problem+json"], (method, path, status)


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
async def test_a_method_a_path_does_not_have_answers_405_with_allow(client: Client, path: str) -> None:
    documented = {method.upper() for method in DOCUMENT["paths"][path]}
    for method in sorted(set(METHODS) - {m.lower() for m in documented}):
        response = await client.request(method.upper(), _concrete(path))
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "method_not_allowed"
        allowed = {value.strip() for value in response.headers["allow"].split(",")}
        assert documented <= allowed, (path, allowed)
        assert allowed <= documented | {"HEAD", "OPTIONS"}, (path, allowed)


JSON_OPERATIONS = [
    (path, method)
    for path, method, op in _operations()
    # A file upload that also takes CSV (imports) is not a JSON operation: it refuses other types itself.
    if set(op.get("requestBody", {}).get("content", {})) == {"application/json"}
]


@pytest.mark.parametrize(("path", "method"), JSON_OPERATIONS)
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"anything": 1}'),
        ("application/x-www-form-urlencoded", b"anything=1&more=2"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'),
    ],
    ids=["text", "form", "multipart"],
)
async def test_a_json_operation_refuses_a_body_that_is_not_json(
    client: Client, factory: Factory, path: str, method: str, content_type: str, body: bytes
) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    response = await client.request(
        method.upper(), _concrete(path), content=body, headers={**admin.headers, "content-type": content_type}
    )
    assert response.status_code == 415, (method, path, response.text)
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "json_required"
    assert "415" in DOCUMENT["paths"][path][method]["responses"]


async def test_json_is_still_json_under_its_other_names(client: Client) -> None:
    body = json.dumps({"username": "nobody@test", "password": "x", "device_id": "d"}).encode()
    for content_type in ("application/json; charset=utf-8", "application/problem+json", None):
        headers = {"content-type": content_type} if content_type else {}
        response = await client.post("/v1/auth/token", content=body, headers=headers)
        assert response.status_code == 401, (content_type, response.text)


async def test_the_served_document_is_the_exported_one(client: Client) -> None:
    served = (await client.get("/schema/openapi.json")).json()
    assert served == json.loads(json.dumps(DOCUMENT))
