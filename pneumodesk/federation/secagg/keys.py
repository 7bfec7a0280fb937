"""Per-round key pairs and their advertisement, signed with the node's long-term Ed25519 identity key.

Invariant: the signature covers the round id, the node id and both X25519 public keys (framed), so a coordinator
that swaps a key, moves an advertisement to another round or to another node is caught by ``verify_advertisement``.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import KeySubstitutionDetected
from .masks import CONTEXT, framed
from .messages import KeyAdvertisement


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
