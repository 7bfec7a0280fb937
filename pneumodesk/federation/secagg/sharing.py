"""Node-to-node encryption of Shamir shares (AES-256-GCM), relayed by the coordinator as opaque ciphertexts.

Invariants: the key is HKDF of the X25519 agreement of both nodes' share keys, bound to the round and the (sorted)
pair; the associated data binds round, sender and receiver, and the plaintext repeats sender and receiver, so a
ciphertext moved to another round, pair or direction fails to open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ShareDecryptionFailed
from .masks import CONTEXT, framed, hkdf
from .messages import EncryptedShare
from .shamir import SHARE_BYTES

_NONCE_BYTES = 12


def _key(private: X25519PrivateKey, peer_public: bytes, round_id: str, node_a: str, node_b: str) -> bytes:
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    low, high = sorted((node_a, node_b))
    return hkdf(shared, "share-encryption", round_id, low, high)


def _associated(round_id: str, sender: str, receiver: str) -> bytes:
    return framed(CONTEXT, "share", round_id, sender, receiver)


def encrypt_share(share_private: X25519PrivateKey, receiver_share_public: bytes, round_id: str, sender: str,
                  receiver: str, seed_share: int, key_share: int) -> EncryptedShare:
    shares = seed_share.to_bytes(SHARE_BYTES, "big") + key_share.to_bytes(SHARE_BYTES, "big")
    plaintext = framed(sender, receiver) + shares
    nonce = os.urandom(_NONCE_BYTES)
    key = _key(share_private, receiver_share_public, round_id, sender, receiver)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _associated(round_id, sender, receiver))
    return EncryptedShare(sender=sender, receiver=receiver, ciphertext=nonce + ciphertext)


def decrypt_share(share_private: X25519PrivateKey, sender_share_public: bytes, round_id: str,
                  share: EncryptedShare) -> tuple[int, int]:
    """(self-mask-seed share, mask-key share) that ``share.sender`` made for ``share.receiver``."""
    key = _key(share_private, sender_share_public, round_id, share.sender, share.receiver)
    nonce, body = share.ciphertext[:_NONCE_BYTES], share.ciphertext[_NONCE_BYTES:]
    try:
        plaintext = AESGCM(key).decrypt(nonce, body, _associated(round_id, share.sender, share.receiver))
    except InvalidTag:
        raise ShareDecryptionFailed(
            f"The key share from node {share.sender} does not open: it was changed, misaddressed or replayed."
        ) from None
    prefix = framed(share.sender, share.receiver)
    if not plaintext.startswith(prefix) or len(plaintext) != len(prefix) + 2 * SHARE_BYTES:
        raise ShareDecryptionFailed(f"The key share from node {share.sender} names another sender or receiver.")
    body = plaintext[len(prefix):]
    return int.from_bytes(body[:SHARE_BYTES], "big"), int.from_bytes(body[SHARE_BYTES:], "big")
