"""Architectures by name, and bundles: safetensors + model card, sha256 checked on load."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pneumodesk.model import (
    CARD_FILE,
    WEIGHTS_FILE,
    BundleIntegrityError,
    ModelBundleError,
    UnknownArchitectureError,
    architecture_names,
    build_model,
    load_bundle,
)
from tests.builders import make_tiny_bundle


@pytest.mark.parametrize("name", architecture_names())
def test_every_architecture_takes_one_channel_and_gives_one_logit(name):
    model = build_model(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 1)


@pytest.mark.parametrize("name", architecture_names())
def test_architectures_are_fit_for_dp_sgd_and_federation(name):
    model = build_model(name)
    modules = list(model.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules)
    assert any(isinstance(m, nn.GroupNorm) for m in modules)
    assert not any(getattr(m, "inplace", False) for m in modules)
    assert isinstance(model.grad_cam_layer, nn.Module)


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(UnknownArchitectureError, match="pneumonet-m"):
        build_model("resnet-from-the-internet")


def test_bundle_round_trip(tmp_path):
    bundle = make_tiny_bundle()
    bundle.save(tmp_path)
    loaded = load_bundle(tmp_path)
    assert loaded.card.weights_sha256 and len(loaded.card.weights_sha256) == 64
    assert loaded.card.with_updates(weights_sha256="") == bundle.card
    assert loaded.state_dict.keys() == bundle.state_dict.keys()
    for key, tensor in bundle.state_dict.items():
        assert torch.equal(tensor, loaded.state_dict[key])
    card = json.loads((tmp_path / CARD_FILE).read_text())
    for field in (
        "architecture",
        "input_size",
        "preprocessing_version",
        "temperature",
        "operating_points",
        "validation",
        "training",
        "intended_use",
        "limitations",
        "created",
        "weights_sha256",
    ):
        assert field in card


def test_changed_weights_are_refused(tmp_path):
    make_tiny_bundle().save(tmp_path)
    weights = bytearray((tmp_path / WEIGHTS_FILE).read_bytes())
    weights[-1] ^= 0x01
    (tmp_path / WEIGHTS_FILE).write_bytes(bytes(weights))
    with pytest.raises(BundleIntegrityError, match="checksum"):
        load_bundle(tmp_path)


def test_incomplete_or_foreign_bundles_are_refused(tmp_path):
    make_tiny_bundle().save(tmp_path)
    card = json.loads((tmp_path / CARD_FILE).read_text())

    (tmp_path / CARD_FILE).write_text(json.dumps({**card, "preprocessing_version": "999"}))
    with pytest.raises(ModelBundleError, match="preprocessing version"):
        load_bundle(tmp_path)

    del card["operating_points"]
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelBundleError, match="missing operating_points"):
        load_bundle(tmp_path)

    (tmp_path / CARD_FILE).unlink()
    with pytest.raises(ModelBundleError, match=r"model_card\.json is missing"):
        load_bundle(tmp_path)


def test_weights_are_not_pickles(tmp_path):
    make_tiny_bundle().save(tmp_path)
    header_length = int.from_bytes((tmp_path / WEIGHTS_FILE).read_bytes()[:8], "little")
    header = json.loads((tmp_path / WEIGHTS_FILE).read_bytes()[8 : 8 + header_length])
    assert header["__metadata__"]["architecture"] == "pneumonet-tiny"
