"""What a node signs with its long-term Ed25519 identity key: its round keys' advertisement and the survivor list.

Invariants: the advertisement's signature covers the round id, the node id and both X25519 public keys (framed), so
a coordinator that swaps a key, moves an advertisement to another round or to another node is caught by
``verify_advertisement``; the consistency signature covers the round id, the signer and the sorted survivor list U3
(framed, under its own label), so it cannot be moved to another round, another signer or another list.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import ConsistencyCheckFailed, KeySubstitutionDetected
from .masks import CONTEXT, framed
from .messages import ConsistencySignature, KeyAdvertisement


def advertisement_bytes(round_id: str, node_id: str, mask_public: bytes, share_public: bytes) -> bytes:
    return framed(CONTEXT, "advertise-keys", round_id, node_id, mask_public, share_public)


def sign_advertisement(identity: Ed25519PrivateKey, round_id: str, node_id: str, mask_public: bytes,
                       share_public: bytes) -> KeyAdvertisement:
    signature = identity.sign(advertisement_bytes(round_id, node_id, mask_public, share_public))
    return KeyAdvertisement(round_id=round_id, node_id=node_id, mask_public=mask_public, share_public=share_public,
                            signature=signature)


def verify_advertisement(advertisement: KeyAdvertisement, identity_public: bytes, round_id: str) -> None:
    """Raise ``KeySubstitutionDetected`` unless the advertisement is this round's and signed by ``identity_public``."""
    if advertisement.round_id != round_id:
        raise KeySubstitutionDetected(
            f"The round keys of node {advertisement.node_id} belong to another round; they were replayed."
        )
    message = advertisement_bytes(advertisement.round_id, advertisement.node_id, advertisement.mask_public,
                                  advertisement.share_public)
    try:
        Ed25519PublicKey.from_public_bytes(identity_public).verify(advertisement.signature, message)
    except (InvalidSignature, ValueError):
        raise KeySubstitutionDetected(
            f"The round keys of node {advertisement.node_id} are not signed by its enrolled key; "
            "someone substituted them. The round cannot be trusted."
        ) from None


def consistency_bytes(round_id: str, node_id: str, survivors: tuple[str, ...]) -> bytes:
    return framed(CONTEXT, "consistency-check", round_id, node_id, *survivors)


def sign_survivors(identity: Ed25519PrivateKey, round_id: str, node_id: str,
                   survivors: tuple[str, ...]) -> ConsistencySignature:
    return ConsistencySignature(round_id=round_id, node_id=node_id,
                                signature=identity.sign(consistency_bytes(round_id, node_id, survivors)))


def verify_survivors(signature: ConsistencySignature, identity_public: bytes, round_id: str,
                     survivors: tuple[str, ...]) -> None:
    """``ConsistencyCheckFailed`` unless ``signature`` is this round's, by ``identity_public``, on ``survivors``."""
    message = consistency_bytes(round_id, signature.node_id, survivors)
    try:
        if signature.round_id != round_id:
            raise InvalidSignature
        Ed25519PublicKey.from_public_bytes(identity_public).verify(signature.signature, message)
    except (InvalidSignature, ValueError):
        raise ConsistencyCheckFailed(
            f"The signature of node {signature.node_id} is not on this round's list of surviving nodes; the "
            "coordinator forged it or showed the nodes different lists. This node reveals nothing more."
        ) from None
