"""Signed checkpoints of the audit chain, kept outside the database.

Whoever owns the database can rewrite the chain from a link to its end, recomputing every hash,
or cut its tail: the chain alone cannot show it. A checkpoint is the chain head (position, hash,
sealed events, time) signed with an Ed25519 key the database owner does not hold, written to a
directory the owner cannot write. `verify --checkpoints` then requires the chain to pass through
every checkpoint: a cut tail ends before one, a rewritten or shortened chain has another hash there.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registry.config import Settings

log = logging.getLogger(__name__)

FORMAT = "registry-audit-checkpoint/1"


class CheckpointError(Exception):
    """A key or checkpoint that cannot be used; the message names it."""


def generate_key(path: Path) -> str:
    """A new private key in `path` (mode 0600, never overwritten); returns the public half (PEM)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointError(f"{path} exists already: a key is never overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return public_pem(key.public_key())


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint key {path} cannot be read: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"checkpoint key {path} is not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """The public half from a private key file, or a public key file (what an auditor holds)."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    if b"PRIVATE KEY" in data:
        return load_private(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise CheckpointError(f"checkpoint key {path} cannot be read") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"checkpoint key {path} is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Checkpoint:
    position: int  # the link of the head; the chain holds as many sealed events
    hash: bytes
    time: str  # when it was written (UTC, ISO 8601)
    name: str = "-"  # its file name, to name it in a verdict

    def body(self) -> bytes:
        """What is signed: the fields as compact JSON with sorted keys."""
        fields = {"format": FORMAT, "position": self.position, "hash": self.hash.hex(), "events": self.position, "time": self.time}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


async def head(conn: AsyncConnection) -> Checkpoint:
    """The chain head as sealed now (position 0 and zero hash for an empty chain)."""
    row = (await conn.execute(text("SELECT position, hash FROM audit_seal ORDER BY position DESC LIMIT 1"))).first()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Checkpoint(row.position, bytes(row.hash), now) if row else Checkpoint(0, bytes(32), now)


def signed(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    document = json.loads(checkpoint.body())
    document["signature"] = base64.b64encode(key.sign(checkpoint.body())).decode()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write(directory: Path, checkpoint: Checkpoint, key: Ed25519PrivateKey) -> Path:
    """Write the signed checkpoint atomically as checkpoint-<position>.json; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"checkpoint-{checkpoint.position:012d}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint.", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        out.write(signed(checkpoint, key))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return path


def read(path: Path, key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint of `path`, or CheckpointError when it is malformed or its signature wrong."""
    try:
        document = json.loads(path.read_text())
        signature = base64.b64decode(document.pop("signature"), validate=True)
        checkpoint = Checkpoint(int(document["position"]), bytes.fromhex(document["hash"]), str(document["time"]), path.name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"checkpoint {path.name} is malformed") from None
    if document.get("format") != FORMAT or document.get("events") != checkpoint.position:
        raise CheckpointError(f"checkpoint {path.name} is malformed")
    try:
        key.verify(signature, checkpoint.body())
    except InvalidSignature:
        raise CheckpointError(f"checkpoint {path.name}: the signature is not valid") from None
    return checkpoint


def read_all(directory: Path, key: Ed25519PublicKey) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint of `directory`, by position, and the problems of those that are not valid."""
    found, problems = [], []
    for path in sorted(Path(directory).glob("checkpoint-*.json")):
        try:
            found.append(read(path, key))
        except CheckpointError as exc:
            problems.append(str(exc))
    return sorted(found, key=lambda c: c.position), problems


def problem(checkpoint: Checkpoint, sealed: int, hash_there: bytes | None) -> str | None:
    """Why the chain (of `sealed` verified links, `hash_there` at the checkpoint's position) does
    not pass through the checkpoint; None when it does."""
    if checkpoint.position > sealed:
        return (f"checkpoint {checkpoint.name}: the chain ends at link {sealed}, before the checkpoint's "
                f"link {checkpoint.position} (its tail was cut, or events removed)")
    if hash_there != checkpoint.hash:
        return (f"checkpoint {checkpoint.name}: link {checkpoint.position} has another hash than the checkpoint "
                "(the chain was rewritten or events removed before it)")
    return None


class Periodic:
    """The sealer's checkpoints: one every `interval` seconds, when the chain has grown since."""

    def __init__(self, directory: Path, key: Ed25519PrivateKey, interval: float) -> None:
        self.directory, self.key, self.interval = directory, key, interval
        self._last_at = float("-inf")
        self._last_position: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Periodic | None":
        """None unless both the key and the directory are configured; an unusable key stops the start."""
        if settings.audit_checkpoint_key is None or settings.audit_checkpoint_dir is None:
            return None
        key = load_private(settings.audit_checkpoint_key)
        return cls(Path(settings.audit_checkpoint_dir), key, settings.audit_checkpoint_interval_seconds)

    async def maybe_write(self, engine: AsyncEngine) -> Path | None:
        if time.monotonic() - self._last_at < self.interval:
            return None
        async with engine.connect() as conn:
            current = await head(conn)
        self._last_at = time.monotonic()
        if current.position == self._last_position:
            return None
        path = write(self.directory, current, self.key)
        self._last_position = current.position
        log.info("audit checkpoint of link %d written to %s", current.position, path)
        return path
