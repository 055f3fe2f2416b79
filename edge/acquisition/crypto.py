"""Sealing sensitive channel values before they leave the device: AES-GCM or SM4-GCM.

A sealed message names its algorithm and key id (never the key) and carries a fresh
96-bit nonce; the associated data binds the bus topic and the acquisition tick, so a
sealed value replayed on another topic or at another tick fails authentication.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.acquisition.model import CRYPTO_ALGORITHMS as ALGORITHMS
from edge.errors import CryptoError

log = logging.getLogger(__name__)
NONCE_BYTES = 12
TAG_BYTES = 16


def sm4_gcm_supported() -> bool:
    """True when this cryptography/OpenSSL build offers SM4 in GCM mode."""
    try:
        enc = Cipher(algorithms.SM4(bytes(16)), modes.GCM(bytes(12))).encryptor()
        enc.update(b"x")
        enc.finalize()
        return True
    except (UnsupportedAlgorithm, ValueError, AttributeError):
        return False


def encrypt(alg: str, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """Ciphertext followed by the 16-byte tag."""
    if alg == "aes-gcm":
        return AESGCM(key).encrypt(nonce, plaintext, aad)
    if alg == "sm4-gcm":
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        return enc.update(plaintext) + enc.finalize() + enc.tag
    raise CryptoError(f"unknown algorithm {alg!r} (expected one of: {', '.join(ALGORITHMS)})")


def decrypt(alg: str, key: bytes, nonce: bytes, aad: bytes, sealed: bytes) -> bytes:
    """The plaintext; raises CryptoError when authentication fails."""
    try:
        if alg == "aes-gcm":
            return AESGCM(key).decrypt(nonce, sealed, aad)
        if alg == "sm4-gcm":
            ct, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
            dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
            dec.authenticate_additional_data(aad)
            return dec.update(ct) + dec.finalize()
    except (InvalidTag, ValueError):
        raise CryptoError("sealed message failed authentication (wrong key, topic, tick or "
                          "a tampered message)") from None
    raise CryptoError(f"unknown algorithm {alg!r}")


def _check_key(alg: str, key: bytes) -> None:
    sizes = (16, 24, 32) if alg == "aes-gcm" else (16,)
    if len(key) not in sizes:
        raise CryptoError(f"{alg} needs a key of {' or '.join(map(str, sizes))} bytes, "
                          f"got {len(key)}")
    if alg == "sm4-gcm" and not sm4_gcm_supported():
        raise CryptoError("SM4-GCM is not supported by this cryptography/OpenSSL build; "
                          "use aes-gcm")


def read_key_file(path: str | os.PathLike) -> bytes:
    """A key file holds the raw key bytes, or the key in hex on one line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        mode = p.stat().st_mode
    except OSError as exc:
        raise CryptoError(f"cannot read key file {p}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is readable by group or others; it should be mode 0600", p)
    text = raw.strip()
    try:
        if text and len(text) in (32, 48, 64) and all(c in b"0123456789abcdefABCDEF"
                                                      for c in text):
            return bytes.fromhex(text.decode())
    except ValueError:
        pass
    return raw


def aad_for(topic: str, tick: int) -> bytes:
    return msgpack.packb([topic, tick])


class Sealer:
    """Seals values with one key; the key id defaults to a fingerprint of the key."""

    def __init__(self, alg: str, key: bytes, key_id: str | None = None) -> None:
        if alg not in ALGORITHMS:
            raise CryptoError(f"unknown algorithm {alg!r} "
                              f"(expected one of: {', '.join(ALGORITHMS)})")
        _check_key(alg, key)
        self.alg = alg
        self._key = key
        self.key_id = key_id or hashlib.sha256(b"edge key id" + key).hexdigest()[:16]
        self.sealed = 0

    @classmethod
    def from_key_file(cls, alg: str, path: str | os.PathLike,
                      key_id: str | None = None) -> Sealer:
        return cls(alg, read_key_file(path), key_id)

    def seal(self, topic: str, tick: int, data: Any, nonce: bytes | None = None) -> dict:
        """The sealed envelope of `data` for `topic` at acquisition tick `tick`."""
        nonce = nonce or os.urandom(NONCE_BYTES)
        ct = encrypt(self.alg, self._key, nonce, aad_for(topic, tick),
                     msgpack.packb(data, use_bin_type=True))
        self.sealed += 1
        return {"sealed": True, "alg": self.alg, "kid": self.key_id, "tick": tick,
                "nonce": nonce, "ct": ct}


class Keyring:
    """The receiving side: key id -> key; opens envelopes for a given topic."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, bytes]] = {}

    def add(self, sealer_or_alg: Sealer | str, key: bytes | None = None,
            key_id: str | None = None) -> str:
        s = sealer_or_alg if isinstance(sealer_or_alg, Sealer) else \
            Sealer(sealer_or_alg, key or b"", key_id)
        self._keys[s.key_id] = (s.alg, s._key)
        return s.key_id

    def open(self, topic: str, envelope: dict) -> Any:
        """The value inside `envelope` as published on `topic`; raises CryptoError."""
        try:
            alg, key = self._keys[envelope["kid"]]
        except KeyError:
            raise CryptoError(f"no key with id {envelope.get('kid')!r}") from None
        if alg != envelope.get("alg"):
            raise CryptoError(f"key {envelope['kid']} is for {alg}, not {envelope.get('alg')}")
        plain = decrypt(alg, key, envelope["nonce"], aad_for(topic, envelope["tick"]),
                        envelope["ct"])
        return msgpack.unpackb(plain, raw=False)
