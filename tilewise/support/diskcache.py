"""The on-disk compile cache: backends keep what they compiled (CPU object code, cubins, emulator
libraries) so that a fresh process skips the compiler.

    root       TILEWISE_CACHE_DIR, else $XDG_CACHE_HOME/tilewise, else ~/.cache/tilewise
    off        TILEWISE_CACHE=0
    layout     <root>/<namespace>/<sha256 of the key material>.bin, one directory per backend

An entry is a header (magic, the key's digest, payload length, payload sha256) and the payload. It is
written to a temporary file in the same directory and renamed into place, so a concurrent reader sees
the old entry, no entry or the whole new one, never part of one. An entry whose header does not check
out (truncated, corrupt, another key's) is deleted and reads as a miss: the caller compiles again.
The cache never breaks compilation: a directory that cannot be written is warned about once and
skipped. Only directories holding the namespace marker are ever listed or cleared, so pointing
TILEWISE_CACHE_DIR at a directory with other content is safe."""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import warnings
from pathlib import Path

MAGIC = b"TWCACHE1"
_HEADER = struct.Struct("<8s32sQ32s")   # magic, key digest, payload length, payload sha256
MARKER = ".tilewise-cache"              # marks a namespace directory as ours (info and clear look for it)
TMP_PREFIX = ".tmp-"
_WARNED = set()


def enabled() -> bool:
    return os.environ.get("TILEWISE_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def root() -> Path:
    env = os.environ.get("TILEWISE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tilewise"


def key_digest(key_material) -> bytes:
    """sha256 of the key: a str or bytes, or a sequence of them (joined with NUL so parts cannot run
    into each other)."""
    if isinstance(key_material, (str, bytes)):
        key_material = (key_material,)
    h = hashlib.sha256()
    for part in key_material:
        h.update(part.encode() if isinstance(part, str) else bytes(part))
        h.update(b"\0")
    return h.digest()


def _warn_once(where, err):
    if where not in _WARNED:
        _WARNED.add(where)
        warnings.warn(f"tilewise: the compile cache at {where} is not usable ({err}); compiling without it "
                      "(set TILEWISE_CACHE_DIR to a writable directory, or TILEWISE_CACHE=0)", RuntimeWarning,
                      stacklevel=3)


def namespace_dir(namespace: str, create=True) -> Path | None:
    """The directory of one namespace, created (with its marker) on request; None when the cache is off
    or the directory cannot be created."""
    if not enabled():
        return None
    d = root() / namespace
    if create and not (d / MARKER).exists():
        try:
            d.mkdir(parents=True, exist_ok=True)
            (d / MARKER).touch()
        except OSError as e:
            _warn_once(d.parent, e)  # once per cache root, however many namespaces fail
            return None
    return d


def _path(namespace, digest):
    return root() / namespace / f"{digest.hex()}.bin"


def get(namespace: str, key_material) -> bytes | None:
    """The payload stored under the key, or None (a miss, the cache is off, or the entry was bad)."""
    if not enabled():
        return None
    digest = key_digest(key_material)
    path = _path(namespace, digest)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError:
        return None
    if len(blob) >= _HEADER.size:
        magic, key, length, check = _HEADER.unpack_from(blob)
        data = blob[_HEADER.size:]
        if magic == MAGIC and key == digest and length == len(data) and hashlib.sha256(data).digest() == check:
            return data
    try:  # torn, corrupt or foreign: drop it so the recompiled entry replaces it
        path.unlink()
    except OSError:
        pass
    return None


def put(namespace: str, key_material, data: bytes) -> bool:
    """Store `data` under the key, atomically; False (after one warning) where the cache cannot be written."""
    d = namespace_dir(namespace)
    if d is None:
        return False
    digest = key_digest(key_material)
    data = bytes(data)
    header = _HEADER.pack(MAGIC, digest, len(data), hashlib.sha256(data).digest())
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=TMP_PREFIX)
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(data)
        os.replace(tmp, _path(namespace, digest))
        return True
    except OSError as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        _warn_once(d, e)
        return False


def _namespaces():
    r = root()
    try:
        return sorted(p for p in r.iterdir() if p.is_dir() and (p / MARKER).exists())
    except OSError:
        return []


def info() -> dict:
    """{"root", "enabled", "namespaces": {name: {"entries", "bytes"}}}; an entry is any file but the marker."""
    out = {}
    for d in _namespaces():
        entries = size = 0
        for dirpath, _, files in os.walk(d):
            for name in files:
                if name == MARKER:
                    continue
                try:
                    size += os.stat(os.path.join(dirpath, name)).st_size
                    entries += 1
                except OSError:  # removed by another process meanwhile
                    pass
        out[d.name] = {"entries": entries, "bytes": size}
    return {"root": str(root()), "enabled": enabled(), "namespaces": out}


def clear(namespace: str | None = None) -> int:
    """Delete every namespace (or one) and return how many entries went."""
    counts = info()["namespaces"]
    removed = 0
    for d in _namespaces():
        if namespace is None or d.name == namespace:
            shutil.rmtree(d, ignore_errors=True)
            removed += counts.get(d.name, {}).get("entries", 0)
    return removed
