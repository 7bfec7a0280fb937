"""End to end: the documented backup (``pg_dump`` of the database plus a copy of the coordinator folder) restores
into a new database and folder that serve the same models, plans, rounds and audit log."""

from __future__ import annotations

import json
import shutil
import subprocess

from .coordinator_harness import (
    Coordinator,
    approved_nodes,
    coordinator_cli,
    dyadic_update,
    init_coordinator,
    model_list,
    plan_json,
    publish_via_api,
    weighted_mean,
)


def test_pg_dump_and_folder_copy_round_trip(tmp_path, tiny_bundle_dir, postgres_server):
    url = postgres_server.fresh_database_url()
    directory = init_coordinator(tmp_path / "coordinator", tiny_bundle_dir, url)
    coordinator = Coordinator(directory).start()
    nodes = approved_nodes(coordinator, 2)
    operator = coordinator.operator_token()
    plan = publish_via_api(coordinator, operator, plan_json(model_list(coordinator, operator)[0]["sha256"],
                                                            min_nodes=2))
    round_id = nodes[0].join(plan["plan_sha256"])["round_id"]
    weights = nodes[0].download(1)
    updates = [dyadic_update(weights, seed) for seed in range(2)]
    for node, update in zip(nodes, updates, strict=True):
        assert node.upload(round_id, update, 1).status_code == 200
    models = model_list(coordinator, operator)
    audit = json.loads(coordinator_cli("audit", directory).stdout)

    # Back up (as docs/coordinator.md says): the database with pg_dump, then the folder.
    dump = tmp_path / "coordinator.dump"
    subprocess.run([postgres_server.tool("pg_dump"), "--format=custom", f"--file={dump}",
                    postgres_server.libpq_uri(url)], check=True, capture_output=True, timeout=120)
    backup = tmp_path / "backup"
    shutil.copytree(directory, backup)
    coordinator.stop()

    # Restore into a new, empty database and a new folder that names it.
    restored_url = postgres_server.fresh_database_url()
    subprocess.run([postgres_server.tool("pg_restore"), "--no-owner", "--exit-on-error",
                    f"--dbname={postgres_server.libpq_uri(restored_url)}", str(dump)],
                   check=True, capture_output=True, timeout=120)
    restored_dir = tmp_path / "restored"
    shutil.copytree(backup, restored_dir)
    config = json.loads((restored_dir / "coordinator.json").read_text())
    (restored_dir / "coordinator.json").write_text(json.dumps({**config, "database_url": restored_url}))

    restored = Coordinator(restored_dir).start()
    try:
        assert model_list(restored, restored.operator_token()) == models
        for node in nodes:  # the same nodes, keys and federation: their tokens are accepted again
            node.coordinator, node.http = restored, restored.session()
            assert node.request_token().status_code == 200
        result = nodes[1].download(models[-1]["version"])
        for name, value in weighted_mean(updates, [1, 1]).items():
            assert (result[name] == value).all()
        restored_audit = json.loads(coordinator_cli("audit", restored_dir).stdout)
        assert restored_audit[:len(audit)] == audit and len(restored_audit) > len(audit)  # and it goes on
        assert nodes[0].get(f"/rounds/{round_id}").json()["state"] == "complete"
    finally:
        restored.stop()
