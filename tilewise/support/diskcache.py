"""The on-disk compile cache: backends keep what they compiled (CPU object code, cubins, emulator
libraries and precompiled headers) so that a fresh process skips the compiler.

    root       TILEWISE_CACHE_DIR, else $XDG_CACHE_HOME/tilewise, else ~/.cache/tilewise
    off        TILEWISE_CACHE=0
    layout     <root>/<namespace>/<sha256 of the key material>.bin, one directory per backend

Every entry of every backend has one form: a header (magic, the key's digest, payload length, payload
sha256) and the payload. It is written to a temporary file in the same directory and renamed into
place, so a concurrent reader sees the old entry, no entry or the whole new one, never part of one.
Nothing is handed out before its header and digest check out. An entry that does not (truncated,
flipped or patched bytes, empty, garbage, another key's, a directory in its place) is removed, warned
about (once per process) and reads as a miss: the caller compiles again and the new entry replaces it.

What must be loaded from a file (a shared library for dlopen, a precompiled header for the compiler) is
stored as bytes like anything else (put_file) and comes back as a copy in this process's private
directory, written from the verified bytes (get_file): what is loaded is what was checked, and no
other process can swap the file between the check and the load. A cache that cannot be written (a
read-only root) still serves its hits; the misses are compiled and kept in the private directory, and
one warning says so. Only directories holding the namespace marker are ever listed or cleared, so
pointing TILEWISE_CACHE_DIR at a directory with other content is safe."""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import struct
import tempfile
import threading
import warnings
from pathlib import Path

MAGIC = b"TWCACHE1"
_HEADER = struct.Struct("<8s32sQ32s")   # magic, key digest, payload length, payload sha256
MARKER = ".tilewise-cache"              # marks a namespace directory as ours (info and clear look for it)
TMP_PREFIX = ".tmp-"
_WARNED = set()
_PRIVATE = {}  # process id -> its private directory (private_dir)
_LOCK = threading.Lock()


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
    if ("unusable", str(root())) not in _WARNED:  # once per process and cache, however many directories fail
        _WARNED.add(("unusable", str(root())))
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
            _warn_once(d.parent, e)
            return None
    return d


def _path(namespace, digest):
    return root() / namespace / f"{digest.hex()}.bin"


def _warn_damaged(path, why):
    where = ("damaged", str(root()))
    if where not in _WARNED:  # once per process and cache: a damaged disk may hold many bad entries
        _WARNED.add(where)
        warnings.warn(f"tilewise: a damaged compile cache entry was discarded and is compiled again ({path}: {why}); "
                      "later damaged entries are replaced without a warning", RuntimeWarning, stacklevel=4)


def _damage(blob, digest):
    """Why an entry's bytes cannot be trusted, or None when they can."""
    if len(blob) < _HEADER.size:
        return f"{len(blob)} bytes, less than a header"
    magic, key, length, check = _HEADER.unpack_from(blob)
    payload = memoryview(blob)[_HEADER.size:]
    if magic != MAGIC:
        return "not a tilewise cache entry"
    if key != digest:
        return "the entry of another key"
    if length != len(payload):
        return f"{len(payload)} bytes of payload where its header says {length}"
    if hashlib.sha256(payload).digest() != check:
        return "its bytes do not match their sha256"
    return None


def check(path) -> str | None:
    """Why the entry file at `path` cannot be trusted, or None when it can (for tests and tools)."""
    path = Path(path)
    try:
        digest = bytes.fromhex(path.stem)
        return _damage(path.read_bytes(), digest)
    except (ValueError, OSError) as e:
        return str(e)


def _discard(path, seen):
    """Remove a bad entry so that the recompiled one takes its place, unless a writer replaced it since
    it was read (`seen`: the os.stat of what was read)."""
    try:
        if seen is not None:
            now = os.stat(path)
            if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
                os.unlink(path)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:  # read-only, or gone already: the miss stands either way
        pass


def _load(namespace, key_material) -> memoryview | None:
    """The verified payload (a view of the entry's bytes past the header), or None."""
    if not enabled():
        return None
    digest = key_digest(key_material)
    path = _path(namespace, digest)
    seen = None
    try:
        with open(path, "rb") as f:
            seen = os.fstat(f.fileno())
            blob = f.read()
    except IsADirectoryError:
        blob, why = None, "a directory"
    except OSError:  # no entry (or none we may read: a write, if allowed, replaces it)
        return None
    else:
        why = _damage(blob, digest)
        if why is None:
            return memoryview(blob)[_HEADER.size:]
    _discard(path, seen)
    _warn_damaged(path, why)
    return None


def reject(namespace: str, key_material, why: str):
    """Drop an entry that checked out but that its user found bad (e.g. a compiler refused it), with the
    same warning as a damaged one, so that what is built next replaces it."""
    path = entry_path(namespace, key_material)
    _discard(path, None)
    _warn_damaged(path, why)


def entry_path(namespace: str, key_material) -> Path:
    """Where the entry of a key lives (whether or not it exists)."""
    return _path(namespace, key_digest(key_material))


def get(namespace: str, key_material) -> bytes | None:
    """The payload stored under the key, or None (a miss, the cache is off, or the entry was bad)."""
    payload = _load(namespace, key_material)
    return None if payload is None else bytes(payload)


def _write_atomically(dest: Path, *chunks) -> None:
    """Write `chunks` to `dest` through a temporary file in its directory and a rename, so a reader sees
    the old file, none, or the whole new one (a directory in the way goes, like any bad entry). Raises
    OSError, with the temporary file removed."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=TMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        try:
            os.replace(tmp, dest)
        except IsADirectoryError:
            _discard(dest, None)
            os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def put(namespace: str, key_material, data: bytes) -> bool:
    """Store `data` under the key, atomically; False (after one warning) where the cache cannot be written."""
    d = namespace_dir(namespace)
    if d is None:
        return False
    digest = key_digest(key_material)
    data = bytes(data)
    header = _HEADER.pack(MAGIC, digest, len(data), hashlib.sha256(data).digest())
    try:
        _write_atomically(_path(namespace, digest), header, data)
        return True
    except OSError as e:
        _warn_once(d, e)
        return False


def private_dir() -> Path:
    """A directory of this process's own (mode 0700 from mkdtemp under TMPDIR, removed at exit) for
    files that must be files: verified copies of entries, and what is compiled where the cache cannot
    keep it."""
    with _LOCK:
        pid = os.getpid()
        if pid not in _PRIVATE:  # a forked child gets its own: the parent's goes when the parent exits
            _PRIVATE[pid] = Path(tempfile.mkdtemp(prefix="tilewise-"))
            atexit.register(_remove_private, pid)
        return _PRIVATE[pid]


def _remove_private(pid):
    if os.getpid() == pid:
        shutil.rmtree(_PRIVATE.pop(pid), ignore_errors=True)


def put_file(namespace: str, key_material, path) -> bool:
    """Store a built file's bytes under the key (see put)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    return put(namespace, key_material, data)


def get_file(namespace: str, key_material, name: str) -> Path | None:
    """The entry's verified payload as the file `name` (a relative path) in private_dir(), for what is
    loaded from a file (dlopen, a precompiled header): the copy is written from the bytes that were
    checked, in a directory no other user can write, so nothing unverified can be loaded in its place.
    None on a miss (a bad entry included)."""
    payload = _load(namespace, key_material)
    if payload is None:
        return None
    dest = private_dir() / name
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(dest, payload)  # a thread loading an earlier copy of the entry keeps a whole file
        return dest
    except OSError as e:
        _warn_once(dest.parent, e)
        return None


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
