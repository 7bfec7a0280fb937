"""Operator logins: counted before the password is checked, per address and per user name, with a bounded number
of argon2 checks at once (issue 13, finding 8). The real route handler on a real service, without HTTP."""

from __future__ import annotations

import asyncio

import pytest

from pneumodesk.coordinator.errors import Unauthorised
from pneumodesk.coordinator.routes.context import ApiContext, RateLimited
from pneumodesk.coordinator.routes.operators import login
from pneumodesk.coordinator.service import CoordinatorService
from pneumodesk.coordinator.setup import initialise
from pneumodesk.federation.messages import LoginRequest

PASSWORD = "a long enough password"


@pytest.fixture
def context(tmp_path, tiny_bundle_dir):
    initialise(tmp_path / "c", hosts=[], port=0, operator="admin", password=PASSWORD, model=tiny_bundle_dir)
    service = CoordinatorService.open(tmp_path / "c")
    yield ApiContext(service)
    service.close()


def _outcome(context: ApiContext, password: str, address: str) -> str:
    try:
        asyncio.run(login(LoginRequest(username="admin", password=password), context, address))
    except Unauthorised:
        return "wrong"
    except RateLimited:
        return "limited"
    return "ok"


def test_guessing_one_account_from_many_addresses_is_limited_per_user(context):
    outcomes = [_outcome(context, "not the password", f"10.0.0.{i}") for i in range(14)]
    assert outcomes == ["wrong"] * 10 + ["limited"] * 4
    assert _outcome(context, PASSWORD, "10.0.1.1") == "limited"  # the account waits out the minute too


def test_a_successful_login_gives_its_counts_back(context):
    assert [_outcome(context, PASSWORD, "10.0.0.1") for _ in range(15)] == ["ok"] * 15


def test_password_checks_beyond_the_bound_are_refused_at_once(context):
    async def burst() -> list[str]:
        async def one(i: int) -> str:
            try:
                await login(LoginRequest(username="admin", password="not the password"), context, f"10.0.2.{i}")
            except Unauthorised:
                return "wrong"
            except RateLimited:
                return "limited"
            return "ok"

        return list(await asyncio.gather(*(one(i) for i in range(6))))

    outcomes = asyncio.run(burst())
    assert outcomes.count("wrong") == context.config.concurrent_login_checks
    assert outcomes.count("limited") == 6 - context.config.concurrent_login_checks
