"""End to end: every byte each node sent, from enrolment to the last round, recorded exactly as it left. Nothing in
it names a file or path, carries pixels or per-image values: only protocol messages, example counts and model
updates with the model's own tensor names. The egress log holds one entry per request."""

from __future__ import annotations

import json
import re

import numpy as np

from pneumodesk.client import EngineOptions, EngineStage
from pneumodesk.client.local_federation import run_engines
from pneumodesk.federation.messages import EXAMPLES_HEADER, SHA256_HEADER
from pneumodesk.federation.tensors import safetensors_header, state_dict_from_bytes
from pneumodesk.imaging import read_xray
from pneumodesk.imaging.preprocess import preprocess

from .node_harness import Recorder, make_plan, node_coordinator_fixture, ready_hospitals  # noqa: F401 - fixture

ENDPOINTS = re.compile(r"^(GET|POST|PUT) /api/v1/(version|nodes/enrol|nodes/node-[0-9a-f]+/(challenge|token)|"
                       r"plans(/[0-9a-f]{64}(/wait|/join)?)?|rounds/\d+(/update)?|models/\d+/weights)$")
JSON_KEYS = {"/nodes/enrol": {"code", "name", "public_key"}, "/token": {"nonce", "signature"}}
HEADERS = {"user-agent", "accept-encoding", "accept", "connection", "content-length", "content-type",
           "authorization", EXAMPLES_HEADER.lower(), SHA256_HEADER.lower()}


def _chunks(array: np.ndarray, size: int = 32) -> list[bytes]:
    """Distinctive byte runs of an image's values (as float32, float16 and uint8), to look for in what was sent."""
    flat = np.ascontiguousarray(array).reshape(-1)
    middle = len(flat) // 2
    runs = []
    for dtype in (np.float32, np.float16, np.uint8):
        data = flat.astype(dtype).tobytes()
        width = size * np.dtype(dtype).itemsize // 4
        start = middle * np.dtype(dtype).itemsize
        runs.append(data[start:start + width])
    return runs


def test_only_protocol_messages_counts_and_model_updates_leave(node_coordinator, tmp_path):
    recorder = Recorder()
    hospitals = ready_hospitals(node_coordinator, tmp_path, 2, recorder=recorder)
    plan = make_plan(node_coordinator, rounds=2, min_nodes=2)
    node_coordinator.publish(plan)
    for hospital, dataset_id in hospitals:
        hospital.approve_plan(plan, dataset_id)
    engines = [h.engine(plan.sha256, options=EngineOptions(poll_timeout=5, candidates="none"),
                        recorder=recorder.for_hospital(h.name)) for h, _ in hospitals]
    results = run_engines(engines, timeout=300)
    assert [r.phase for r in results] == [EngineStage.FINISHED] * 2
    model_keys = set(state_dict_from_bytes(node_coordinator.weights(1)))

    for index, (hospital, dataset_id) in enumerate(hospitals):
        events = recorder.events[hospital.name]
        data_root = tmp_path / f"data-{index}"
        files = sorted(p for p in data_root.rglob("*") if p.is_file())
        training = hospital.service.datasets.files(dataset_id, "training")
        forbidden_text = {str(tmp_path), str(hospital.home), "person", "NORMAL", "PNEUMONIA", ".jpeg",
                          *(p.stem for p in files)}
        forbidden_bytes = [run for path in files[:: max(1, len(files) // 12)]
                           for run in _chunks(preprocess(read_xray(path), plan.input_size))]
        forbidden_bytes += [path.read_bytes()[100:132] for path in files[:5]]  # raw file bytes
        uploads = 0
        assert len(events) == hospital.service.egress.totals()["requests"]  # the log saw every request
        for event in events:
            line = f"{event.method} {event.endpoint}"
            assert ENDPOINTS.match(line), line
            assert {part.split("=")[0] for part in event.query.split("&") if part} <= {"since", "timeout"}
            assert {k.lower() for k in event.headers} <= HEADERS, event.headers
            visible = line + event.query + json.dumps(dict(event.headers))
            if event.endpoint.endswith("/update"):
                uploads += 1
                header = safetensors_header(event.body)
                assert set(header) - {"__metadata__"} == model_keys
                assert not header.get("__metadata__")
                # A public count, nothing per image: under DP the plan's cap, never the hospital's real size.
                assert int(event.headers[EXAMPLES_HEADER]) == plan.reported_examples(len(training))
                assert not plan.dp.enabled or int(event.headers[EXAMPLES_HEADER]) != len(training)
            elif event.body:
                payload = json.loads(event.body)
                keys = next((v for k, v in JSON_KEYS.items() if event.endpoint.endswith(k)), None)
                assert keys is not None and set(payload) == keys, (event.endpoint, payload)
                visible += event.body.decode()
            for text in forbidden_text:
                assert text not in visible, (text, line)
            for run in forbidden_bytes:
                assert run not in event.body, line
        assert uploads == 2
