"""Content-addressed model artifacts: stored under their sha256, verified on every read.

The artifact root is a local directory by default and any fsspec URL otherwise
(``s3://bucket/models``, ``gs://…``, ``memory://…``; the filesystem's own package must be
installed). A blob lives at ``<root>/sha256/<first two hex digits>/<digest>``, so the same bytes
registered twice are stored once, and a blob that changed on disk (corruption, tampering) is
refused when it is read: the digest is recomputed and compared before anything is unpickled or
handed to a runtime.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Final

import fsspec

from watchkeeper.errors import NotFoundError, StoreError

__all__ = ["ArtifactIntegrityError", "ArtifactStore", "sha256_hex"]

_CHUNK: Final = 1 << 20


class ArtifactIntegrityError(StoreError):
    """An artifact's bytes no longer hash to the digest it was registered under."""


def sha256_hex(data: bytes) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _check_digest(digest: str) -> str:
    if len(digest) != 64 or any(char not in "0123456789abcdef" for char in digest):
        raise NotFoundError(
            f"artifact digest must be 64 lowercase hex characters, got {digest!r}",
            kind="artifact",
            name=digest,
        )
    return digest


class ArtifactStore:
    """Blobs by sha256 under one root (a directory or an fsspec URL).

    >>> import tempfile
    >>> store = ArtifactStore(tempfile.mkdtemp())
    >>> digest = store.put(b"weights")
    >>> store.get(digest)
    b'weights'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = os.fspath(root)
        if "://" in text:
            self._fs, self._root = fsspec.core.url_to_fs(text)
        else:
            self._fs, self._root = fsspec.filesystem("file"), str(Path(text).resolve())
        self.root = text

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    def _path(self, digest: str) -> str:
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def put(self, data: bytes) -> str:
        """Store ``data`` (once: the same bytes are kept once) and return its sha256."""
        digest = sha256_hex(data)
        path = self._path(digest)
        if self._fs.exists(path):
            return digest
        self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        # Write aside, then rename: a reader never sees half a blob under its digest.
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with self._fs.open(partial, "wb") as sink:
                sink.write(data)
            self._fs.mv(partial, path)
        except OSError as exc:
            raise StoreError(f"cannot write artifact {digest} under {self.root}: {exc}") from exc
        finally:
            if self._fs.exists(partial):
                self._fs.rm(partial)
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, after checking that they still hash to it."""
        path = self._path(_check_digest(digest))
        try:
            with self._fs.open(path, "rb") as source:
                data: bytes = source.read()
        except FileNotFoundError:
            raise NotFoundError(
                f"artifact {digest} is missing from {self.root}", kind="artifact", name=digest
            ) from None
        actual = sha256_hex(data)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"artifact {digest} under {self.root} has changed since it was registered "
                f"(its bytes now hash to {actual}); refusing to load it"
            )
        return data
