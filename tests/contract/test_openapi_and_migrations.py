"""The committed contract matches the code, and the migrations match the models."""

from __future__ import annotations

import json

from backend.app import openapi_document
from backend.cli import OPENAPI_PATH
from backend.db.migrate import check
from backend.settings import Settings


def test_committed_openapi_matches_the_code() -> None:
    committed = json.loads(OPENAPI_PATH.read_text())
    current = json.loads(json.dumps(openapi_document(), sort_keys=True))
    assert committed == current, "The API changed: run `./dev openapi export` and commit mobile_contract/openapi.json"


def test_every_operation_has_an_id_and_documents_problems() -> None:
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("operationId"), f"{method.upper()} {path} has no operationId"


def test_models_and_migrations_agree(settings: Settings) -> None:
    # Raises when an autogenerate would produce changes: a model was edited without a migration.
    check(settings.database_url)
