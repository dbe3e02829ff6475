"""tilewise.numpy arrays as the chunks of Dask arrays (docs/distributed.md).

Importing this module registers tilewise.numpy's array with Dask's per-chunk-type dispatch: joining
chunks, `tensordot`, creating empty chunks, counting elements, percentiles, `sizeof` (what the
distributed scheduler counts against a worker's memory), tokenizing, distributed's serialization (a
GPU chunk lands on the receiving worker's GPU) and a "tilewise" array backend for Dask's creation
functions (`dask.config.set({"array.backend": "tilewise"})`). Chunk operations themselves need
nothing here: Dask calls NumPy's functions on the chunks, and the array's `__array_ufunc__` and
`__array_function__` run them as tilewise.numpy (fused tile kernels where it has them, visible fallbacks
where not).

    import dask.array as da
    import tilewise.numpy as tnp
    from tilewise import dask as twdask

    cluster, client = twdask.local_cluster(n_workers=2)       # processes, TILEWISE_NUM_THREADS set
    x = twdask.to_tilewise(da.random.random((40_000, 1_000), chunks=(5_000, 1_000)))
    total = (x * 2 + da.sin(x)).sum().compute()                # one fused kernel per chunk

Worker processes must import this module too (Dask only knows the registrations of modules it has
imported): `local_cluster` preloads it; elsewhere use `setup(client)` or `dask worker --preload
tilewise.dask`.
"""
from __future__ import annotations

import os

import numpy as np
from dask.array import backends as _backends
from dask.array import chunk_types as _chunk_types
from dask.array import dispatch as _dispatch
from dask.sizeof import sizeof as _sizeof

try:
    from dask.tokenize import normalize_token as _normalize_token
except ImportError:  # dask before 2024.2 kept it in dask.base
    from dask.base import normalize_token as _normalize_token

from . import numpy as tnp
from .numpy.array import ndarray

try:
    from distributed import WorkerPlugin as _WorkerPlugin
    from distributed.protocol import dask_deserialize as _dask_deserialize
    from distributed.protocol import dask_serialize as _dask_serialize
    from distributed.protocol.numpy import deserialize_numpy_ndarray as _deserialize_numpy
    from distributed.protocol.numpy import serialize_numpy_ndarray as _serialize_numpy
except ImportError:  # dask without distributed: everything but the cluster helpers works
    _WorkerPlugin = object
    _dask_serialize = None

__all__ = ["register", "to_tilewise", "to_numpy_chunks", "meta", "worker_threads", "worker_env",
           "local_cluster", "setup", "TilewisePlugin"]


# ---- what Dask asks of a chunk type -----------------------------------------------------------------

def _tensordot(a, b, axes=2):
    """numpy.tensordot as NumPy writes it (transpose, reshape, one matmul), so the product runs through
    tilewise.numpy's matmul (tilewise.math's GEMM kernel) instead of a NumPy fallback."""
    a, b = tnp.asarray(a), tnp.asarray(b)
    if isinstance(axes, (int, np.integer)):
        axes_a, axes_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        axes_a, axes_b = ([v] if isinstance(v, (int, np.integer)) else list(v) for v in axes)
    axes_a = [ax % a.ndim for ax in axes_a]
    axes_b = [ax % b.ndim for ax in axes_b]
    if len(axes_a) != len(axes_b) or any(a.shape[i] != b.shape[j] for i, j in zip(axes_a, axes_b)):
        raise ValueError("shape-mismatch for sum")
    free_a = [ax for ax in range(a.ndim) if ax not in axes_a]
    free_b = [ax for ax in range(b.ndim) if ax not in axes_b]
    size = lambda x, axes: int(np.prod([x.shape[ax] for ax in axes], dtype=np.int64))  # noqa: E731
    n = size(a, axes_a)
    at = a.transpose(*free_a, *axes_a).reshape(size(a, free_a), n)  # not -1: Dask's metas have size 0
    bt = b.transpose(*axes_b, *free_b).reshape(n, size(b, free_b))
    out = tnp.matmul(at, bt)
    return out.reshape(*(a.shape[ax] for ax in free_a), *(b.shape[ax] for ax in free_b))


def _numel(x, **kwargs):
    # the element count as our array (NumPy's default would turn mean's denominator into a NumPy array)
    return _backends._numel_arraylike(x, **kwargs)


def _to_numpy(x, **kwargs):
    return np.asarray(x, **kwargs)


def _chunk_sizeof(x):
    # Distributed asks for a task's result size right after the task, in the task's thread: computing a
    # pending result there makes each task's chain one kernel run inside that task, and keeps a worker's
    # memory what the scheduler counts (a pending value would hold its operands alive unseen).
    x._value()
    return int(x.nbytes) + 64


def _serialize(x):
    header, frames = _serialize_numpy(np.asarray(x))  # host memory as it is; a device's copied to the host
    header["tilewise-device"] = x.device
    return header, frames


def _deserialize(header, frames):
    # A chunk from a GPU goes to the receiving worker's own GPU (its default device: one GPU per worker,
    # as with dask-cuda), not to the sender's device number, which names another GPU or none here.
    on_gpu = header.pop("tilewise-device") != "cpu"
    return tnp.asarray(_deserialize_numpy(header, frames), device=None if on_gpu else "cpu")


def _token(x):
    return ("tilewise.numpy.ndarray", x.device, _normalize_token(np.asarray(x)))


def _with_tilewise_meta(attr, *args, meta=None, **kwargs):
    import dask
    import dask.array as da
    meta = tnp.empty(()) if meta is None else meta
    with dask.config.set({"array.backend": "numpy"}):  # Dask's own function, told the chunk type by meta
        return getattr(da, attr)(*args, meta=meta, **kwargs)


class _Backend(_backends.ArrayBackendEntrypoint):
    """`dask.config.set({"array.backend": "tilewise"})`: Dask's creation functions (`ones zeros empty
    full arange`) make tilewise.numpy chunks. Random arrays still come with NumPy chunks (`to_tilewise`
    converts them)."""

    @classmethod
    def to_backend(cls, data, **kwargs):
        return data if isinstance(data._meta, ndarray) else to_tilewise(data, **kwargs)

    @property
    def RandomState(self):  # noqa: N802 - Dask's name
        return np.random.RandomState

    @property
    def default_bit_generator(self):
        return np.random.PCG64

    @staticmethod
    def ones(*args, **kwargs):
        return _with_tilewise_meta("ones", *args, **kwargs)

    @staticmethod
    def zeros(*args, **kwargs):
        return _with_tilewise_meta("zeros", *args, **kwargs)

    @staticmethod
    def empty(*args, **kwargs):
        return _with_tilewise_meta("empty", *args, **kwargs)

    @staticmethod
    def full(*args, **kwargs):
        return _with_tilewise_meta("full", *args, **kwargs)

    @staticmethod
    def arange(*args, like=None, **kwargs):
        import dask
        import dask.array as da
        with dask.config.set({"array.backend": "numpy"}):
            return da.arange(*args, like=tnp.empty(()) if like is None else like, **kwargs)


_REGISTERED = []


def register():
    """Register tilewise.numpy's array with Dask's dispatch (done on import; safe to call again)."""
    if _REGISTERED:
        return
    _chunk_types.register_chunk_type(ndarray)  # Dask arrays take precedence over ours in mixed operations
    _dispatch.concatenate_lookup.register(ndarray, tnp.concatenate)
    _dispatch.tensordot_lookup.register(ndarray, _tensordot)
    _dispatch.empty_lookup.register(ndarray, tnp.empty)
    _dispatch.numel_lookup.register(ndarray, _numel)
    _dispatch.nannumel_lookup.register(ndarray, _backends._nannumel)
    _dispatch.percentile_lookup.register(ndarray, _backends.percentile)
    _dispatch.to_numpy_dispatch.register(ndarray, _to_numpy)
    _sizeof.register(ndarray, _chunk_sizeof)
    _normalize_token.register(ndarray, _token)
    if _dask_serialize is not None:
        _dask_serialize.register(ndarray)(_serialize)
        _dask_deserialize.register(ndarray)(_deserialize)
    _backends.array_creation_dispatch.register_backend("tilewise", _Backend())
    _REGISTERED.append(True)


register()


# ---- converting Dask arrays ---------------------------------------------------------------------------

def meta(dtype, ndim, device=None):
    """A zero-size tilewise.numpy array: the `meta=` Dask keeps to know its chunks' type."""
    return tnp.empty((0,) * ndim, dtype=dtype, device=device)


def _as_chunk(block, device=None):
    return tnp.asarray(block, device=device)


def to_tilewise(x, chunks="auto", device=None):
    """A Dask array whose chunks are tilewise.numpy arrays: `x` a Dask array (its chunks converted where
    they are, no copy for NumPy chunks on the CPU), or an array (NumPy, tilewise.numpy, anything
    `asarray` takes) cut into `chunks`."""
    import dask.array as da
    if not isinstance(x, da.Array):
        x = tnp.asarray(x, device=device)
        return da.from_array(x, chunks=chunks, asarray=False, meta=meta(x.dtype, x.ndim, x.device))
    return x.map_blocks(_as_chunk, device=device, dtype=x.dtype, meta=meta(x.dtype, x.ndim, device))


def _as_numpy(block):
    return np.asarray(block)


def to_numpy_chunks(x):
    """The Dask array `x` with NumPy chunks (tilewise.numpy chunks on a device copied to the host)."""
    return x.map_blocks(_as_numpy, dtype=x.dtype, meta=np.empty((0,) * x.ndim, x.dtype))


# ---- workers ----------------------------------------------------------------------------------------

def worker_threads(n_workers, threads_per_worker=1, cores=None):
    """TILEWISE_NUM_THREADS for each worker process so that the machine's cores are shared, not
    oversubscribed: every Dask thread of every worker may launch a kernel at once, and each kernel runs
    on TILEWISE_NUM_THREADS threads (the calling one among them)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, n_workers * threads_per_worker))


def worker_env(n_workers, threads_per_worker=1, cores=None, device=None):
    """The environment a tilewise worker process starts with (for Nanny's `env=`, dask-jobqueue's
    `job_script_prologue`, or a Kubernetes pod spec)."""
    env = {"TILEWISE_NUM_THREADS": str(worker_threads(n_workers, threads_per_worker, cores))}
    if device is not None:
        env["TILEWISE_DEVICE"] = str(device)
    return env


def local_cluster(n_workers=None, threads_per_worker=1, memory_limit="auto", client=True, devices=None, **kwargs):
    """A `distributed.LocalCluster` suited to tilewise: worker processes (tilewise's kernels release the
    GIL, but processes keep each worker's Python work apart), one Dask thread each by default, so that
    tilewise's own threads use the cores (TILEWISE_NUM_THREADS = cores // (workers * threads)), and this
    module preloaded in every worker, replacements included. Returns (cluster, client), or the cluster
    alone with `client=False`. Other keywords go to LocalCluster.

    `devices` (["cuda:0", "cuda:1"], or emulated ones): one worker per device instead, as dask-cuda
    starts them: a real GPU's worker sees only its GPU (CUDA_VISIBLE_DEVICES) as cuda:0, its default
    device (TILEWISE_DEVICE), so the chunks it makes (`to_tilewise`) and receives live there."""
    from distributed import Client, LocalCluster
    cores = os.cpu_count() or 1
    if devices:
        n_workers = len(devices)
    n_workers = n_workers or max(1, cores // 4)  # a few cores per process: tilewise fills them
    env = {**worker_env(n_workers, threads_per_worker, cores), **kwargs.pop("env", {})}
    preload = list(kwargs.pop("preload", [])) + ["tilewise.dask"]
    if devices:
        cluster = _device_cluster(devices, threads_per_worker, memory_limit, env, preload, **kwargs)
    else:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                               memory_limit=memory_limit, env=env, preload=preload, **kwargs)
    return (cluster, Client(cluster)) if client else cluster


def _device_env(device):
    kind, _, ordinal = str(device).partition(":")
    if kind == "cuda":
        return {"CUDA_VISIBLE_DEVICES": ordinal or "0", "TILEWISE_DEVICE": "cuda:0"}
    return {"TILEWISE_DEVICE": str(device)}  # the emulated GPU: no driver to hide the others from


def _device_cluster(devices, threads_per_worker, memory_limit, env, preload, dashboard_address=":8787",
                    silence_logs=30, **kwargs):
    from distributed import Nanny, Scheduler, SpecCluster
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": dashboard_address, "host": "127.0.0.1"}}
    workers = {f"tilewise-{str(d).replace(':', '-')}": {
        "cls": Nanny, "options": {"nthreads": threads_per_worker, "memory_limit": memory_limit, "host": "127.0.0.1",
                                  "env": {**env, **_device_env(d)}, "preload": preload,
                                  "silence_logs": silence_logs, **kwargs}}
        for d in devices}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=silence_logs)


class TilewisePlugin(_WorkerPlugin):
    """A worker plugin (`client.register_plugin(TilewisePlugin(...))`) for clusters started elsewhere: on
    every worker, now and later, it imports this module and sets TILEWISE_NUM_THREADS (read at each launch)
    and, if given, TILEWISE_DEVICE."""

    name = "tilewise"
    idempotent = True

    def __init__(self, num_threads=None, device=None):
        self.num_threads, self.device = num_threads, device

    def setup(self, worker):
        register()
        n = self.num_threads or worker_threads(1, worker.state.nthreads)
        os.environ["TILEWISE_NUM_THREADS"] = str(n)
        if self.device is not None:
            os.environ["TILEWISE_DEVICE"] = str(self.device)


def setup(client, num_threads=None, device=None):
    """Prepare every worker of `client`'s cluster (present and future) for tilewise chunks. Without
    `num_threads`, each worker shares its machine's cores among its own Dask threads; where several
    workers share a machine, pass `worker_threads(...)` for that machine."""
    plugin = TilewisePlugin(num_threads, device)
    client.register_plugin(plugin)
    return plugin
