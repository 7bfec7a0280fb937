"""Short-lived node tokens obtained by signing the coordinator's challenge with the node key.

Invariants: tokens live in memory only (they are re-obtainable in one round trip, so nothing is written to disk);
a token is refreshed before it expires (``margin``), and at once after a 401; the challenge's audience must be the
federation the node enrolled with, so a different coordinator behind the same address gets no signature; a nonce
or token that could not travel as plain ASCII in signed bytes or a header, or a lifetime that is not positive, is a
``ProtocolError`` (nothing is signed or kept).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pneumodesk.federation.messages import ChallengeResponse, TokenResponse, challenge_bytes
from pneumodesk.federation.vocabulary import ErrorCode, RefusalReason

from .answers import NONCE_PATTERN, TOKEN_PATTERN
from .errors import NotAuthorised, ProtocolError, Refused
from .keys import NodeKey, b64url
from .transport import Transport

LONGEST_LIFETIME = 24 * 3600.0  # a longer promise is read as this: the token is refreshed at least daily


class NodeTokens:
    """A ``TokenSource`` for ``Transport``: ``token()`` returns a valid bearer token, fetching one if needed."""

    def __init__(self, transport: Transport, key: NodeKey, node_id: str, audience: str | None = None, *,
                 margin: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.transport, self.key, self.node_id, self.audience = transport, key, node_id, audience
        self.margin, self.clock = margin, clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._expires:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        path = f"/nodes/{self.node_id}"
        try:
            challenge_response = self.transport.send("POST", f"{path}/challenge", purpose="authentication")
        except Refused as error:
            if error.status == 404:  # the coordinator answers so for revoked and unknown nodes alike
                raise NotAuthorised("The coordinator no longer accepts this node: its enrolment was revoked or "
                                    "removed. It must enrol again with a new code.", 403, error.code,
                                    reason=RefusalReason.REVOKED) from None
            raise
        try:
            challenge = ChallengeResponse.model_validate(self.transport.json(challenge_response))
        except ValueError:
            raise ProtocolError("The coordinator's challenge is malformed.") from None
        if NONCE_PATTERN.fullmatch(challenge.nonce) is None:
            raise ProtocolError("The coordinator's challenge is malformed.")
        if self.audience is not None and challenge.audience != self.audience:
            raise NotAuthorised("The coordinator at this address belongs to another federation than the one this "
                                "node enrolled with; nothing was signed.", 401, ErrorCode.UNAUTHORISED)
        signature = self.key.sign(challenge_bytes(challenge.audience, self.node_id, challenge.nonce))
        started = self.clock()
        response = self.transport.send("POST", f"{path}/token", purpose="authentication",
                                       json_body={"nonce": challenge.nonce, "signature": b64url(signature)})
        try:
            token = TokenResponse.model_validate(self.transport.json(response))
        except ValueError:
            raise ProtocolError("The coordinator's token answer is malformed.") from None
        if TOKEN_PATTERN.fullmatch(token.access_token) is None or token.expires_in <= 0:
            raise ProtocolError("The coordinator's token answer is malformed.")
        lifetime = float(min(token.expires_in, LONGEST_LIFETIME))
        margin = min(self.margin, lifetime * 0.2)
        self._token, self._expires = token.access_token, started + lifetime - margin
        self.refreshes += 1
