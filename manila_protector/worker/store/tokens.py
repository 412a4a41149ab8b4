"""Callers' tokens at rest: Fernet-encrypted with keys from the configuration.

A job keeps its caller's token while it is unfinished (to resume after a crash
or on another worker without service credentials).  Invariants:

- The store holds a token only as Fernet ciphertext (AES-128-CBC with
  HMAC-SHA256; ``cryptography``), only in the ``job_tokens`` table.
- Keys come from ``[worker] token_keys``: the first encrypts, every one
  decrypts, so a key is rotated by putting the new one first and removing the
  old one once no unfinished job holds a token made with it.  Every worker of a
  shared store needs the same keys.
- Without configured keys (one host, an SQLite store only) a key is generated
  once into a file created 0600; it is published with ``link(2)``, which fails
  when the file exists, so workers starting together agree on one key and none
  reads a half-written file.
- A ciphertext no key decrypts (its key was removed too early) yields no token;
  the job then runs as if it had none.
- Neither a key nor a token appears in a message, a log line or a ``repr``.
  ``cryptography``'s errors are translated here and nowhere else.
"""

from __future__ import annotations

import os
import stat
import typing
import uuid

from cryptography import fernet


def _fernet(key: str | bytes, where: str) -> fernet.Fernet:
    try:
        return fernet.Fernet(key)
    except (ValueError, TypeError):
        # NOTE: the message names where the key came from, never the key.
        raise ValueError(f"{where} is not a Fernet key (32 url-safe base64-encoded bytes; "
                         "make one with `python3 -c 'from cryptography.fernet import "
                         "Fernet; print(Fernet.generate_key().decode())'`)") from None


class TokenCipher:
    """Encrypts tokens for the store and decrypts them for a job's run.

    :param keys: Fernet keys, the one that encrypts first.
    :param source: where the keys come from (named in errors, e.g. ``[worker] token_keys``).
    :raises ValueError: no key, or one that is not a Fernet key.
    """

    def __init__(self, keys: typing.Sequence[str | bytes], *,
                 source: str = "[worker] token_keys") -> None:
        if not keys:
            raise ValueError(f"{source}: at least one key is needed")
        self._fernet = fernet.MultiFernet(
            [_fernet(key, f"{source} entry {index + 1}") for index, key in enumerate(keys)])
        self._count = len(keys)

    @classmethod
    def from_key_file(cls, path: str) -> TokenCipher:
        """The cipher of the key in ``path``, generating that file (0600) if it is missing.

        :raises ValueError: the file is readable by others than its owner, or holds no key.
        """
        try:
            key = _read_key_file(path)
        except FileNotFoundError:
            key = _create_key_file(path)
        return cls([key], source=f"the key file {path}")

    def encrypt(self, token: str) -> str:
        """The ciphertext of ``token`` (URL-safe base64 text)."""
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str | None:
        """The token in ``ciphertext``, or None when no key decrypts it."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (fernet.InvalidToken, UnicodeError):
            return None

    def __repr__(self) -> str:
        return f"<TokenCipher with {self._count} key(s)>"


def _read_key_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"the key file {path} is readable by others than its owner: "
                             "make it 0600")
        key = handle.read().strip()
    if not key:
        raise ValueError(f"the key file {path} is empty")
    return key


def _create_key_file(path: str) -> bytes:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = fernet.Fernet.generate_key()
    temporary = f"{path}.{uuid.uuid4().hex}.new"  # unique per thread and process
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        # Another process published its key first: use that one.
        return _read_key_file(path)
    finally:
        os.unlink(temporary)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the key outlives a power cut, like the tokens made with it
    finally:
        os.close(dir_fd)
    return key
