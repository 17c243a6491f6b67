"""Property-based tests of the HTTP API against its own OpenAPI schema.

Schemathesis loads ``/openapi.json`` from the running test stack and, for every
operation, generates requests from the schema (valid ones, and invalid ones the
API must reject), sends them, and checks each response: never a 5xx, a status
code the schema documents, and a content type, headers and body that conform.

Bounded on purpose: at most 25 generated examples per operation, derandomized
(the same requests every run), no shrinking, no Hypothesis example database.
Accepted job submissions are real jobs; the module waits (bounded) for them to
finish so that later tests do not queue behind them.

Known API findings are listed in KNOWN_FINDINGS, each matched narrowly (one
operation, one kind of response): a response that matches one is left out of
the checks and the test is marked xfail with the finding, so that any other
failure still fails the test, and once the API is fixed the test simply passes.

(``schemathesis.pytest.from_fixture`` would be the usual way to load a schema
from a live server, but its lazy loader reads ``request.node._nodeid``, which
pytest 9 no longer has; so operations are parametrized here and each one's
Hypothesis strategy is taken from the schema the running API serves.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.stack

MAX_EXAMPLES = 25
SEED = 20_240_601
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
FINAL_STATES = ("done", "failed", "cancelled")

# Ids of the jobs this module's requests created, to wait for at the end.
_created: list[str] = []


@dataclass(frozen=True)
class Finding:
    method: str
    path: str
    matches: Callable[[object, httpx.Response], bool]  # (case, response)
    what: str


KNOWN_FINDINGS: list[Finding] = []  # none open: add one here, narrowly, when a check finds a real bug


def auth_headers(stack: dict[str, str]) -> dict[str, str]:
    """The bearer header once the stack has an API key; nothing before."""
    key = stack.get("CHORUS_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture(scope="module")
def api_schema(stack: dict[str, str]):
    headers = auth_headers(stack)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": headers,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        }
    )
    return schemathesis.openapi.from_url(
        f"{stack['CHORUS_API_URL']}/openapi.json", config=config, headers=headers, timeout=30, wait_for_schema=30
    )


@pytest.fixture(scope="module")
def checks() -> list:
    return [getattr(schemathesis.checks, name) for name in CHECK_NAMES]  # the built-in checks, by public name


@pytest.fixture(scope="module", autouse=True)
def _drain_jobs(stack: dict[str, str]) -> Iterator[None]:
    """After the module: wait (at most 120 s) for the jobs it submitted to finish."""
    yield
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=stack["CHORUS_API_URL"], headers=auth_headers(stack), timeout=30) as client:
        pending = list(_created)
        while pending and time.monotonic() < deadline:
            pending = [j for j in pending if client.get(f"/v1/jobs/{j}").json().get("state") not in FINAL_STATES]
            if pending:
                time.sleep(0.5)


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the application at collection
    time; each is then looked up in the schema the running API serves."""
    from chorus.api.main import app

    return [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item]


OPERATIONS = _operations()
PROTECTED = [(m, p) for m, p in OPERATIONS if p.startswith("/v1/")]


def _ids(operations: list[tuple[str, str]]) -> list[str]:
    return [f"{m} {p}" for m, p in operations]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=_ids(OPERATIONS))
def test_operation_conforms_to_the_schema(api_schema, checks, stack: dict[str, str], method: str, path: str) -> None:
    operation = api_schema[path][method]
    headers = auth_headers(stack)
    known = [f for f in KNOWN_FINDINGS if (f.method, f.path) == (method, path)]
    seen: set[str] = set()
    # Valid requests, and invalid ones, which must be rejected with a documented 4xx.
    cases = st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every example is a real request
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def check(case) -> None:
        response = case.call(headers=headers, timeout=30, allow_redirects=False)
        if method == "POST" and path == "/v1/jobs" and response.status_code == 202:
            _created.append(response.json()["id"])
        finding = next((f for f in known if f.matches(case, response)), None)
        if finding is not None:
            seen.add(finding.what)
            return
        case.validate_response(response, checks=checks, headers=headers)

    check()
    if seen:
        pytest.xfail("known API finding(s): " + "; ".join(sorted(seen)))


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=_ids(PROTECTED))
def test_unauthenticated_request_is_documented(api_schema, stack: dict[str, str], method: str, path: str) -> None:
    """Without a key every /v1 operation answers 401, and its schema should say so."""
    if not stack.get("CHORUS_API_KEY"):
        pytest.skip("this stack has no API keys")
    url = stack["CHORUS_API_URL"] + path.replace("{job_id}", "0" * 32).replace("{voice_id}", "nobody")
    response = httpx.request(method, url, json={"text": "Hello."} if method == "POST" else None, timeout=30)
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    documented = api_schema.raw_schema["paths"][path][method.lower()]["responses"]
    if "401" not in documented:
        pytest.xfail(f"{method} {path} answers 401 without a key, but 401 is not documented ({', '.join(documented)})")
