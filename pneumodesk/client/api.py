"""Typed calls of the coordinator's /api/v1, built on ``Transport.send`` (which records every request).

Each method names its ``purpose`` for the egress log in words an admin understands. Invariant: every answer is
checked (schema, then ``answers``: about what was asked, possible values) before it is returned; a hostile or
broken answer is a ``ProtocolError``.
"""

from __future__ import annotations

from typing import TypeVar

import requests
from pydantic import BaseModel, ValidationError

from pneumodesk.federation.messages import (
    EXAMPLES_HEADER,
    SHA256_HEADER,
    ModelVersionInfo,
    NodeInfo,
    PlanSummary,
    PlanWait,
    RoundInfo,
    UploadReceipt,
    VersionInfo,
)
from pneumodesk.federation.tensors import sha256_hex

from .answers import check_plan_summary, check_receipt, check_round, check_sha256, check_wait
from .errors import ProtocolError
from .transport import Transport

M = TypeVar("M", bound=BaseModel)

PURPOSE_ENROL = "enrolment (node name and public key)"
PURPOSE_STATUS = "federation status"
PURPOSE_WAIT = "waiting for the next round"
PURPOSE_JOIN = "joining a round"
PURPOSE_DOWNLOAD = "downloading the global model"
PURPOSE_UPLOAD = "sending the model update and example count"


class CoordinatorClient:
    """The coordinator as the node sees it; ``transport.tokens`` must be set for the node-only endpoints."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _model(self, model: type[M], response: requests.Response) -> M:
        try:
            return model.model_validate(self.transport.json(response))
        except ValidationError:
            raise ProtocolError(f"The coordinator's answer is not a valid {model.__name__}.") from None

    def version(self) -> VersionInfo:
        return self._model(VersionInfo, self.transport.send("GET", "/version", purpose=PURPOSE_STATUS))

    def enrol(self, code: str, name: str, public_key_b64: str) -> NodeInfo:
        response = self.transport.send("POST", "/nodes/enrol", purpose=PURPOSE_ENROL,
                                       json_body={"code": code, "name": name, "public_key": public_key_b64})
        return self._model(NodeInfo, response)

    def plans(self) -> list[PlanSummary]:
        response = self.transport.send("GET", "/plans", purpose=PURPOSE_STATUS, auth=True)
        data = self.transport.json(response)
        if not isinstance(data, list):
            raise ProtocolError("The coordinator's plan list is malformed.")
        try:
            return [check_plan_summary(PlanSummary.model_validate(item)) for item in data]
        except ValidationError:
            raise ProtocolError("The coordinator's plan list is malformed.") from None

    def plan(self, sha: str) -> PlanSummary:
        summary = self._model(PlanSummary, self.transport.send("GET", f"/plans/{sha}", purpose=PURPOSE_STATUS,
                                                               auth=True))
        return check_plan_summary(summary, sha)

    def wait(self, sha: str, since: str | None, timeout: float) -> PlanWait:
        """Long poll: returns when the plan's round differs from ``since`` or after ``timeout`` seconds."""
        params: dict[str, object] = {"timeout": f"{timeout:g}"}
        if since is not None:
            params["since"] = since
        response = self.transport.send("GET", f"/plans/{sha}/wait", purpose=PURPOSE_WAIT, params=params, auth=True,
                                       read_timeout=timeout + 30.0)
        return check_wait(self._model(PlanWait, response), sha)

    def join(self, sha: str) -> RoundInfo:
        info = self._model(RoundInfo, self.transport.send("POST", f"/plans/{sha}/join", purpose=PURPOSE_JOIN,
                                                          auth=True))
        return check_round(info, plan_sha256=sha)

    def round(self, round_id: int) -> RoundInfo:
        info = self._model(RoundInfo, self.transport.send("GET", f"/rounds/{round_id}", purpose=PURPOSE_STATUS,
                                                          auth=True))
        return check_round(info, round_id=round_id)

    def models(self) -> list[ModelVersionInfo]:
        data = self.transport.json(self.transport.send("GET", "/models", purpose=PURPOSE_STATUS, auth=True))
        if not isinstance(data, list):
            raise ProtocolError("The coordinator's model list is malformed.")
        try:
            models = [ModelVersionInfo.model_validate(item) for item in data]
        except ValidationError:
            raise ProtocolError("The coordinator's model list is malformed.") from None
        for model in models:
            check_sha256(model.sha256, "model identity")
        return models

    def weights(self, version: int, expected_sha256: str | None = None, *, architecture: str | None = None) -> bytes:
        """The safetensors bytes of model ``version``, checked against the header's and ``expected_sha256``.

        Never reads more than a model of ``architecture`` can take (``model_size``; without it, the largest
        architecture this node knows): a larger body is a ``ProtocolError`` before it fills the memory.
        """
        from .model_size import largest_weights_size_limit, weights_size_limit

        limit = weights_size_limit(architecture) if architecture is not None else largest_weights_size_limit()
        response = self.transport.send("GET", f"/models/{version}/weights", purpose=PURPOSE_DOWNLOAD, auth=True,
                                       read_timeout=300.0, max_body=limit)
        data = response.content
        actual = sha256_hex(data)
        claimed = response.headers.get(SHA256_HEADER, "").lower()
        if claimed != actual or (expected_sha256 is not None and expected_sha256.lower() != actual):
            raise ProtocolError(f"Model version {version} arrived damaged or is not the one announced (sha256 "
                                "mismatch); it was discarded.")
        return data

    def upload(self, round_id: int, data: bytes, examples: int) -> UploadReceipt:
        """PUT the update; retried safely (the coordinator counts an identical sha256 once)."""
        digest = sha256_hex(data)
        headers = {EXAMPLES_HEADER: str(int(examples)), SHA256_HEADER: digest,
                   "Content-Type": "application/octet-stream"}
        response = self.transport.send("PUT", f"/rounds/{round_id}/update", purpose=PURPOSE_UPLOAD, data=data,
                                       headers=headers, auth=True, read_timeout=300.0)
        return check_receipt(self._model(UploadReceipt, response), round_id, digest, int(examples))
