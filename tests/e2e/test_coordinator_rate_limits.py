"""End to end: the node token endpoints are rate limited per client and node, with a JSON 429 and Retry-After."""

from __future__ import annotations

from .coordinator_harness import approved_nodes


def test_challenge_and_token_requests_are_limited_per_node(coordinator):
    # Prepare: two approved nodes; the limit is 30 challenge/token requests a minute per client address and node.
    first, second = approved_nodes(coordinator, 2)  # each has used 2 of its 30 (one challenge, one token)
    url = f"{coordinator.url}/nodes/{first.node_id}"

    # Execute: 28 more challenges are answered, the next are refused; a signed token request is refused as well.
    answered = [first.http.post(f"{url}/challenge", timeout=30).status_code for _ in range(28)]
    refused = first.http.post(f"{url}/challenge", timeout=30)
    token = first.http.post(f"{url}/token", json={"nonce": "x" * 32, "signature": "y" * 86}, timeout=30)

    # Assert
    assert answered == [200] * 28
    for response in (refused, token):
        assert response.status_code == 429
        body = response.json()
        assert body["error"] == "rate_limited" and body["message"].startswith("Too many attempts; try again in")
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.headers["Content-Type"] == "application/json"
    # Another node from the same address is not affected.
    assert second.request_token().status_code == 200


def test_a_burst_of_concurrent_logins_is_counted_before_any_password_is_checked(coordinator):
    # Prepare: 40 wrong-password logins from one address, all sent at the same moment; the limit is 10 a minute.
    from concurrent.futures import ThreadPoolExecutor

    sessions = [coordinator.session() for _ in range(40)]

    def attempt(session) -> int:
        return session.post(f"{coordinator.url}/operators/login",
                            json={"username": "admin", "password": "not the password"}, timeout=60).status_code

    # Execute
    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(attempt, sessions))

    # Assert: at most 10 reached a password check; every other attempt was refused before one (429).
    assert statuses.count(401) <= 10
    assert statuses.count(429) >= 30 and set(statuses) <= {401, 429}
