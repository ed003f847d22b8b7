"""WeChat message encryption (compatible and secure modes).

- AESKey = Base64_Decode(EncodingAESKey + "="): 32 bytes; AES-256-CBC, IV = AESKey[:16].
- Plaintext = random(16) + big-endian uint32 length + message + appid, PKCS#7-padded to
  a multiple of **32** bytes (not the AES block size), then Base64.
- On decrypt the trailing appid must equal ours.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chatbridge.errors import ConfigurationError, PayloadError, SignatureError

_PAD_BLOCK = 32


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ConfigurationError("EncodingAESKey is not valid Base64") from exc
    if len(key) != 32:  # only 43 Base64 characters (and the "=" added) decode to 32 bytes
        raise ConfigurationError("EncodingAESKey must be 43 characters (a 32-byte key)")
    return key


@dataclass(frozen=True)
class MessageCrypto:
    """Encrypts and decrypts message bodies for one account."""

    app_id: str
    key: bytes = field(repr=False)

    @cached_property
    def _cipher(self) -> Cipher[modes.CBC]:
        # A Cipher is only its configuration; each use makes its own context.
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: bytes, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext of ``message``, the way WeChat encrypts it."""
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        plain = prefix + struct.pack(">I", len(message)) + message + self.app_id.encode()
        padding = _PAD_BLOCK - len(plain) % _PAD_BLOCK
        plain += bytes([padding]) * padding
        encryptor = self._cipher.encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside ``encrypted``; PayloadError if it is not well formed,
        SignatureError if it was encrypted for another appid."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except binascii.Error as exc:
            raise PayloadError("Encrypt is not valid Base64") from exc
        if not data or len(data) % 16:
            raise PayloadError("Encrypt is not a whole number of AES blocks")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        padding = plain[-1]
        if not 1 <= padding <= _PAD_BLOCK or len(plain) < 20 + padding:
            raise PayloadError("decrypted message has invalid padding")
        content = plain[16:-padding]
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise PayloadError("decrypted message length is out of range")
        message, app_id = content[4 : 4 + length], content[4 + length :]
        if app_id != self.app_id.encode():
            raise SignatureError("message was encrypted for another appid")
        return message
