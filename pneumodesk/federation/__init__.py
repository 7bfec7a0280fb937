"""What both sides of the federation share: plan schema and identity, FedAvg, weights on the wire, message schemas."""

from .errors import FederationError, IncompatibleUpdateError, PlanError, WeightsIntegrityError
from .fedavg import FedAvgAccumulator, fedavg
from .plan import DifferentialPrivacy, TrainingPlan, canonical_plan_json, plan_hash
from .tensors import check_compatible, sha256_hex, state_dict_from_bytes, state_dict_to_bytes

__all__ = [
    "DifferentialPrivacy",
    "FedAvgAccumulator",
    "FederationError",
    "IncompatibleUpdateError",
    "PlanError",
    "TrainingPlan",
    "WeightsIntegrityError",
    "canonical_plan_json",
    "check_compatible",
    "fedavg",
    "plan_hash",
    "sha256_hex",
    "state_dict_from_bytes",
    "state_dict_to_bytes",
]
