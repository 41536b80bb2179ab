"""Schemathesis against a live server: every operation, valid and invalid requests, no 5xx, and
every answer's status, content type and body as the OpenAPI document says.

The server runs with authentication on and a SQLite store; requests carry the admin token, so
schemathesis reaches the routes' own validation rather than stopping at 401. Each operation
gets a bounded number of examples, so the whole run stays near a minute on two cores.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.conftest import ADMIN_TOKEN, MODEL, ServerProcess

_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
_EXAMPLES = 20


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("schemathesis")
    process = ServerProcess(
        db=f"sqlite:///{root / 'wk.db'}",
        log=root / "server.log",
        env={"WATCHKEEPER_INGEST_WORKERS": "0"},
    ).start()
    try:
        with process.client() as client:
            client.post("/v1/models", json=MODEL).raise_for_status()
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("mode", "model"),
    [
        (GenerationMode.POSITIVE, None),
        (GenerationMode.NEGATIVE, None),
        # Random names mostly answer 404; the registered model reaches the routes' success paths.
        (GenerationMode.POSITIVE, MODEL["name"]),
    ],
    ids=["positive", "negative", "registered-model"],
)
def test_every_operation_answers_as_documented(
    live: ServerProcess, mode: GenerationMode, model: str | None
) -> None:
    api = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    failures: list[str] = []
    for result in api.get_all_operations():
        operation = result.ok()
        path_parameters = None
        if model is not None:
            if "{model}" not in operation.path or operation.method.upper() == "DELETE":
                continue
            path_parameters = {"model": model}

        @given(case=operation.as_strategy(mode, path_parameters=path_parameters))
        @settings(
            max_examples=_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=_AUTH, checks=_CHECKS)

        try:
            answers_as_documented()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing there to break
        # Every operation is tried and every failure reported (schemathesis raises a
        # BaseExceptionGroup of its findings).
        except (Exception, FailureGroup) as error:
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
