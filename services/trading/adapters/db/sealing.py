"""Encryption at rest of sealed values (底价, sealed bid amounts) before they reach a SQL statement —
so that neither a database dump nor a driver's debug log of statement parameters shows them.

Encrypt-then-MAC from the standard library only: keystream = HMAC-SHA256(k_enc, nonce ‖ counter),
tag = HMAC-SHA256(k_mac, nonce ‖ ciphertext). The key comes from settings (SEALING_KEY)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class SealingError(Exception):
    pass


class Sealer:
    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("a sealing key is required")
        root = hashlib.sha256(key.encode()).digest()
        self._enc = hmac.new(root, b"enc", hashlib.sha256).digest()
        self._mac = hmac.new(root, b"mac", hashlib.sha256).digest()

    def _stream(self, nonce: bytes, length: int) -> bytes:
        out, counter = b"", 0
        while len(out) < length:
            out += hmac.new(self._enc, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
            counter += 1
        return out[:length]

    def seal(self, value: int) -> str:
        nonce = secrets.token_bytes(16)
        plain = str(value).encode()
        cipher = bytes(a ^ b for a, b in zip(plain, self._stream(nonce, len(plain)), strict=True))
        tag = hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        return "v1:" + base64.urlsafe_b64encode(nonce + tag + cipher).decode()

    def open(self, token: str) -> int:
        if not token.startswith("v1:"):
            raise SealingError("unknown sealing format")
        raw = base64.urlsafe_b64decode(token[3:].encode())
        nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
        if not hmac.compare_digest(tag, hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()):
            raise SealingError("sealed value was altered or the key is wrong")
        return int(bytes(a ^ b for a, b in zip(cipher, self._stream(nonce, len(cipher)), strict=True)).decode())
