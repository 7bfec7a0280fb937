"""The privacy budget follows the images, not the dataset's row id (DESIGN invariant 9): removing and re-adding a
dataset, registering the same folder under two names or a subset of it as a CSV cannot reset what the images have
spent, and approvals reserve ε on the images too; an old store's ledger is attributed to its datasets' images."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from alembic import command

from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.node import NodeService, PrivacyBudgetExceeded
from pneumodesk.node.store import alembic_config
from tests.builders import write_labelled_folder
from tests.node_builders import OWNER, seed_node, sign_in

COORDINATOR = "https://127.0.0.1:8443"
PLAN = "c" * 64


def make_plan(name: str) -> TrainingPlan:
    return TrainingPlan(name=name, architecture="pneumonet-tiny", input_size=64, base_model_sha256="a" * 64,
                        learning_rate=0.1, batch_size=16, local_epochs=1, rounds=10, min_nodes=3,
                        secure_aggregation=True)


@pytest.fixture
def node(tmp_path):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home")
    yield service
    service.close()


@pytest.fixture
def owner(tmp_path, node):
    return sign_in(tmp_path / "home", OWNER[0], OWNER[2])


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_labelled_folder(tmp_path / "data", per_class=8, rng=np.random.default_rng(5))


def spend(node: NodeService, dataset_id: int, epsilon: float, plan: str = PLAN, round_number: int = 1) -> None:
    node.ledger.record(dataset_id, plan, round_number, epsilon=epsilon, delta=1e-5, noise_multiplier=1.0,
                       sample_rate=0.05, steps=40)


def subset_csv(folder: Path, path: Path, per_class: int) -> Path:
    """A CSV naming the first ``per_class`` images of each class of ``folder``."""
    rows = ["path,label"]
    for name in ("NORMAL", "PNEUMONIA"):
        rows += [f"{file.as_posix()},{name}" for file in sorted((folder / name).iterdir())[:per_class]]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_removing_and_re_adding_a_dataset_does_not_reset_its_budget(node, owner, folder):
    first = node.datasets.register(owner, "ward", folder).id
    spend(node, first, 3.0)
    node.datasets.remove(owner, first)

    again = node.datasets.register(owner, "ward", folder).id

    assert again != first
    assert node.ledger.spent(again) == pytest.approx(3.0)
    with pytest.raises(PrivacyBudgetExceeded) as refused:
        node.ledger.ensure_room(again, 7.5, cap=10.0)
    assert refused.value.spent == pytest.approx(3.0)
    node.ledger.ensure_room(again, 7.0, cap=10.0)


def test_the_same_folder_under_two_names_shares_its_spent_epsilon(node, owner, folder):
    a = node.datasets.register(owner, "ward A", folder).id
    b = node.datasets.register(owner, "ward B", folder).id

    spend(node, a, 2.0)
    spend(node, b, 1.5)

    assert node.ledger.spent(a) == pytest.approx(3.5) and node.ledger.spent(b) == pytest.approx(3.5)


def test_a_copy_of_the_images_elsewhere_shares_the_budget_too(tmp_path, node, owner, folder):
    a = node.datasets.register(owner, "ward", folder).id
    copy = shutil.copytree(folder, tmp_path / "copied")
    b = node.datasets.register(owner, "copied ward", copy).id

    spend(node, a, 4.0)

    assert node.ledger.spent(b) == pytest.approx(4.0)


def test_a_subset_shares_what_its_images_spent_and_a_disjoint_dataset_does_not(tmp_path, node, owner, folder):
    whole = node.datasets.register(owner, "whole", folder).id
    part = node.datasets.register(owner, "part", subset_csv(folder, tmp_path / "part.csv", per_class=4)).id
    other = node.datasets.register(
        owner, "other", write_labelled_folder(tmp_path / "other", per_class=8, rng=np.random.default_rng(6))).id

    spend(node, whole, 2.0)
    assert node.ledger.spent(part) == pytest.approx(2.0) and node.ledger.spent(other) == 0.0

    spend(node, part, 1.0)  # the subset's images have now spent 3.0, the rest of the whole folder 2.0
    assert node.ledger.spent(part) == pytest.approx(3.0)
    assert node.ledger.spent(whole) == pytest.approx(3.0)  # the worst image decides
    assert node.ledger.spent(other) == 0.0


def test_approvals_reserve_epsilon_on_the_images_not_the_row(node, owner, folder):
    a = node.datasets.register(owner, "ward A", folder).id
    b = node.datasets.register(owner, "ward B", folder).id
    node.approvals.approve(owner, make_plan("first"), a, COORDINATOR, epsilon_total=6.0)

    assert node.approvals.reserved(b) == pytest.approx(6.0)
    with pytest.raises(PrivacyBudgetExceeded, match=r"other approved plans may still spend ε = 6\.00"):
        node.approvals.approve(owner, make_plan("second"), b, COORDINATOR, epsilon_total=5.0)
    assert node.approvals.approve(owner, make_plan("second"), b, COORDINATOR, epsilon_total=4.0)


def test_a_removed_dataset_keeps_its_images_in_the_store(tmp_path, node, owner, folder):
    first = node.datasets.register(owner, "ward", folder).id
    node.datasets.remove(owner, first)

    with sqlite3.connect(tmp_path / "home" / "node.sqlite3") as db:
        kept = db.execute("select count(*) from dataset_images where dataset_id = ?", (first,)).fetchone()[0]
        for statement in ("update dataset_images set digest = 'x'", "delete from dataset_images"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
    assert kept == 16


def test_an_old_store_attributes_each_ledger_entry_to_its_datasets_images(tmp_path, folder):
    home = tmp_path / "home"
    seed_node(home)
    node = NodeService.open(home)
    owner = sign_in(home, OWNER[0], OWNER[2])
    dataset = node.datasets.register(owner, "ward", folder).id
    spend(node, dataset, 2.5)
    node.close()
    config = alembic_config(url=f"sqlite:///{home / 'node.sqlite3'}")
    command.downgrade(config, "r20261127_0002")  # as the store was before the ledger followed the images

    upgraded = NodeService.open(home)  # opening upgrades to head, hashing the registered files
    owner = sign_in(home, OWNER[0], OWNER[2])
    again = upgraded.datasets.register(owner, "ward again", folder).id

    assert upgraded.ledger.spent(dataset) == pytest.approx(2.5)
    assert upgraded.ledger.spent(again) == pytest.approx(2.5)
    upgraded.close()
