"""The OpenAPI description matches the API: every route and method is described, with a summary of what it does,
its parameters, and JSON error answers in the one error schema (tests/e2e checks that the served errors match it)."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from pneumodesk.coordinator.api import create_app
from pneumodesk.coordinator.service import CoordinatorService
from pneumodesk.coordinator.setup import initialise
from pneumodesk.federation.messages import API_PREFIX

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_bundle_dir):
    directory = tmp_path_factory.mktemp("coordinator") / "c"
    initialise(directory, hosts=[], port=0, operator="admin", password=PASSWORD, model=tiny_bundle_dir)
    service = CoordinatorService.open(directory)
    yield create_app(service)
    service.close()


@pytest.fixture(scope="module")
def schema(app) -> dict:
    return app.openapi()


def _operations(app) -> set[tuple[str, str]]:
    """Every route of every included router, at its full path."""
    return {(route.path, method.lower()) for route in iter_route_contexts(app.routes)
            if isinstance(route.original_route, APIRoute) and route.include_in_schema for method in route.methods}


def test_every_route_and_method_is_in_the_description(app, schema):
    described = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert _operations(app) == described
    assert all(path.startswith(API_PREFIX) for path, _ in described)


def test_every_operation_says_what_it_does_and_how_it_fails(schema):
    error_ref = "#/components/schemas/ErrorBody"
    cannot_fail = {f"{API_PREFIX}/health", f"{API_PREFIX}/version"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("description") or operation.get("summary"), f"{where} has no description"
            assert operation.get("tags"), f"{where} has no tag"
            errors = {code: answer for code, answer in operation["responses"].items() if code.startswith("4")}
            assert errors or path in cannot_fail, f"{where} documents no error answer"
            for code, answer in errors.items():  # FastAPI's own validation error shape is never promised
                assert answer["content"]["application/json"]["schema"]["$ref"] == error_ref, f"{where} {code}"
            for parameter in operation.get("parameters", []):
                assert parameter.get("schema"), f"{where}: parameter {parameter['name']} has no schema"
