"""tilewise.numpy arrays as the chunks of Dask arrays (tilewise/dask.py, docs/distributed.md).

The chunk-type checks run on Dask's synchronous scheduler in this process (kernels can be counted here);
the programs then run on a real `distributed.LocalCluster` of two worker processes, started once for the
module, against NumPy; one of its workers is killed in the middle of a computation."""
from __future__ import annotations

import os
import signal
import sys
import time
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import tilewise.numpy as tnp  # noqa: E402
from tilewise import dask as twdask  # noqa: E402
from tilewise import profiler  # noqa: E402
from tilewise.numpy import kernels  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::tilewise.numpy.FallbackWarning")

N, M = 384, 600  # 2-D chunks of 96 x 300 = 28800 elements; with 1-D chunks of 40000 both ends of SMALL


def _data(seed=0, shape=(N, M)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _tw(x, chunks):
    return da.from_array(tnp.asarray(x), chunks=chunks)


def _check(got, want, rtol=2e-5, atol=1e-4):
    assert isinstance(got, tnp.ndarray), type(got)
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


# ---- the chunk type, on Dask's synchronous scheduler -------------------------------------------------

PROGRAMS = {  # name: (dask program on x (and y), NumPy program on the same values)
    "chain": (lambda x, y: x * 2 + da.sin(y) - x * y, lambda x, y: x * 2 + np.sin(y) - x * y),
    "sum": (lambda x, y: (x * y + 1).sum(), lambda x, y: (x.astype(np.float64) * y + 1).sum()),
    "sum-axis0": (lambda x, y: x.sum(axis=0), lambda x, y: x.sum(axis=0, dtype=np.float64)),
    "mean": (lambda x, y: x.mean(), lambda x, y: x.mean(dtype=np.float64)),
    "std-axis1": (lambda x, y: x.std(axis=1), lambda x, y: x.std(axis=1, dtype=np.float64)),
    "max": (lambda x, y: (x - y).max(), lambda x, y: (x - y).max()),
    "argmax": (lambda x, y: x.argmax(), lambda x, y: x.argmax()),
    "argmax-axis0": (lambda x, y: x.argmax(axis=0), lambda x, y: x.argmax(axis=0)),
    "matmul": (lambda x, y: x @ y.T, lambda x, y: x.astype(np.float64) @ y.T),
    "tensordot": (lambda x, y: da.tensordot(x, y, axes=([1], [1])), lambda x, y: x.astype(np.float64) @ y.T),
    "rechunk": (lambda x, y: x.rechunk((200, 150)) + y.rechunk((100, 600)), lambda x, y: x + y),
    "slicing": (lambda x, y: x[10:300:3, ::-2] * y[:97, 1::2], lambda x, y: x[10:300:3, ::-2] * y[:97, 1::2]),
    "var-argmin-axis1": (lambda x, y: x.var(axis=1) + x.argmin(axis=1),
                         lambda x, y: x.var(axis=1, dtype=np.float64) + x.argmin(axis=1)),
    "cumsum-where": (lambda x, y: da.where(x > 0, x, y).cumsum(axis=0),
                     lambda x, y: np.where(x > 0, x, y).cumsum(axis=0, dtype=np.float64)),
    "take-einsum (fallbacks)": (lambda x, y: da.einsum("ij,ij->i", x[[3, 1, 7, 200]], y[[3, 1, 7, 200]]),
                                lambda x, y: np.einsum("ij,ij->i", x[[3, 1, 7, 200]].astype(np.float64),
                                                       y[[3, 1, 7, 200]])),
    "concatenate": (lambda x, y: da.concatenate([x, y[:50]], axis=0) + 1,
                    lambda x, y: np.concatenate([x, y[:50]], axis=0) + 1),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_operations_keep_tilewise_chunks(name):
    fn, ref = PROGRAMS[name]
    xs, ys = _data(1), _data(2)
    x, y = _tw(xs, (96, 300)), _tw(ys, (96, 300))
    r = fn(x, y)
    assert isinstance(r._meta, tnp.ndarray) and (r._meta.size == 0 or r._meta.ndim == 0)
    blocks = r.to_delayed().ravel()
    assert isinstance(blocks[0].compute(scheduler="sync"), tnp.ndarray)
    _check(r.compute(scheduler="sync"), ref(xs, ys), rtol=1e-4)


def test_from_array_and_map_blocks_give_tilewise_chunks():
    xs = _data(3)
    for x in (da.from_array(tnp.asarray(xs), chunks=(128, 300)),
              da.from_array(xs, chunks=(128, 300)).map_blocks(tnp.asarray),
              twdask.to_tilewise(da.from_array(xs, chunks=(128, 300))),
              twdask.to_tilewise(xs, chunks=(128, 300))):
        assert isinstance(x._meta, tnp.ndarray)
        _check((x + 1).compute(scheduler="sync"), xs + 1)
    back = twdask.to_numpy_chunks(twdask.to_tilewise(xs, chunks=(128, 300)))
    assert type(back._meta) is np.ndarray and type(back.compute(scheduler="sync")) is np.ndarray


def test_blockwise_chain_is_one_kernel_per_chunk():
    """Dask fuses the element-wise chain into one task per chunk; inside it tilewise.numpy fuses the
    chain into one kernel, compiled once for every chunk of one structure."""
    arrays = [np.random.default_rng(s).standard_normal(200_000).astype(np.float32) for s in range(5)]
    a, b, c, d, e = (twdask.to_tilewise(v, chunks=40_000) for v in arrays)
    r = a * b + c * da.sin(d) - e
    with profiler.profile() as prof:
        got = r.compute(scheduler="sync")
    (kernel,) = prof.kernels()
    assert kernel.launches == 5 and "sin" in kernel.name
    want = arrays[0] * arrays[1] + arrays[2] * np.sin(arrays[3]) - arrays[4]
    _check(got, want)
    with profiler.profile() as prof:
        total = (a * b + c * da.sin(d) - e).sum().compute(scheduler="sync")
    assert {k.name for k in prof.kernels() if k.launches >= 5} == {"numpy.sum[sin,multiply,add,subtract]"}
    np.testing.assert_allclose(float(total), want.astype(np.float64).sum(), rtol=1e-3)
    # what one task runs on its chunk, as explain() shows it
    chunk = tnp.asarray(arrays[0][:40_000])
    assert "1 group(s)" in tnp.explain(chunk * chunk + chunk * tnp.sin(chunk) - chunk)


def test_array_backend_makes_tilewise_chunks():
    with dask.config.set({"array.backend": "tilewise"}):
        made = {"ones": (da.ones((300, 200), chunks=100, dtype=np.float32), np.ones((300, 200), np.float32)),
                "full": (da.full((10, 10), 3.5, chunks=5), np.full((10, 10), 3.5)),
                "arange": (da.arange(0, 100_000, 3, chunks=10_000, dtype=np.float32),
                           np.arange(0, 100_000, 3, dtype=np.float32))}
        moved = da.from_array(np.arange(10.0), chunks=5).to_backend("tilewise")
    for name, (d, want) in made.items():
        assert isinstance(d._meta, tnp.ndarray), name
        _check(d.compute(scheduler="sync"), want)
    assert isinstance(moved._meta, tnp.ndarray) and isinstance(moved.compute(scheduler="sync"), tnp.ndarray)
    assert type(da.ones(10)._meta) is np.ndarray  # NumPy stays Dask's default


def test_small_tnp_protocol_additions():
    x, y = tnp.asarray(_data(4)), tnp.asarray(_data(5).T.copy())
    before = tnp.fallbacks().get("matmul", {}).get("calls", 0)
    r = np.matmul(x, y)  # a gufunc: __array_ufunc__, as Dask's blockwise matmul calls it
    assert tnp.fallbacks().get("matmul", {}).get("calls", 0) == before
    _check(r, np.asarray(x).astype(np.float64) @ np.asarray(y), rtol=1e-4)
    s = tnp.empty_like(x[:2, :1], dtype=[("vals", np.float32), ("arg", np.int64)])  # Dask's argmax partials
    s["vals"], s["arg"] = x[:2, :1], 7
    assert isinstance(s["arg"], tnp.ndarray) and s["arg"].tolist() == [[7], [7]]


def test_sizeof_tokenize_and_dispatch():
    from dask.array.dispatch import concatenate_lookup, tensordot_lookup
    from dask.sizeof import sizeof
    from dask.tokenize import tokenize
    x = tnp.asarray(np.arange(100_000, dtype=np.float32))
    pending = x * 2
    assert sizeof(pending) >= pending.nbytes and "Leaf" in type(pending._node).__name__  # computed by sizeof
    assert tokenize(x) == tokenize(tnp.asarray(np.arange(100_000, dtype=np.float32))) != tokenize(pending)
    assert concatenate_lookup.dispatch(tnp.ndarray) is tnp.concatenate
    a = tnp.asarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4))
    b = tnp.asarray(np.arange(12, dtype=np.float64).reshape(4, 3))
    r = tensordot_lookup.dispatch(tnp.ndarray)(a, b, axes=([1, 2], [1, 0]))
    _check(r, np.tensordot(np.asarray(a), np.asarray(b), axes=([1, 2], [1, 0])))


def test_worker_threads_share_the_cores():
    assert twdask.worker_threads(2, 1, cores=2) == 1
    assert twdask.worker_threads(2, 1, cores=16) == 8
    assert twdask.worker_threads(2, 4, cores=16) == 2
    assert twdask.worker_threads(8, 4, cores=16) == 1
    assert twdask.worker_env(4, 2, cores=64, device="cuda:0") == {"TILEWISE_NUM_THREADS": "8",
                                                                  "TILEWISE_DEVICE": "cuda:0"}


# ---- on a real LocalCluster ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    import cloudpickle
    # the workers cannot import this test module: its functions travel by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster, client = twdask.local_cluster(n_workers=2, threads_per_worker=1, memory_limit="768MiB",
                                               dashboard_address=None)
    try:
        client.wait_for_workers(2, timeout=60)
        yield client
    finally:
        client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _worker_state():
    from tilewise.backends.cpu import launcher
    return {"env": os.environ.get("TILEWISE_NUM_THREADS"), "threads": launcher.num_threads(),
            "registered": bool(twdask._REGISTERED), "kernels": len(kernels._KERNELS)}


def test_cluster_workers_are_set_for_tilewise(client):
    states = client.run(_worker_state)
    assert len(states) == 2
    want = twdask.worker_threads(2, 1)
    assert all(s["env"] == str(want) and s["threads"] == want and s["registered"] for s in states.values())


def test_cluster_elementwise_reduction_matmul(client):
    xs, ys = _data(6, (1536, 600)), _data(7, (1536, 600))
    x, y = _tw(xs, (384, 300)), _tw(ys, (384, 300))
    chain = x * y + da.sin(x) * 0.5 - y
    before = client.run(_worker_state)
    got = client.compute([chain, chain.sum(), x.mean(axis=0), x.std(), (x - y).max(), x.argmax(),
                          x[:600] @ y[:600].T], sync=True)
    x64 = xs.astype(np.float64)
    want_chain = xs * ys + np.sin(xs) * np.float32(0.5) - ys
    _check(got[0], want_chain)
    np.testing.assert_allclose(float(got[1]), want_chain.astype(np.float64).sum(), rtol=1e-3)
    _check(got[2], x64.mean(axis=0))
    _check(got[3], x64.std())
    _check(got[4], (xs - ys).max())
    assert int(got[5]) == int(xs.argmax())
    _check(got[6], x64[:600] @ ys[:600].T, rtol=1e-4, atol=1e-3)
    after = client.run(_worker_state)
    # one kernel per structure, not per chunk or per operation: 8 chunks of one shape and a handful of
    # programs compile a handful of kernels on each worker
    assert all(after[w]["kernels"] - before[w]["kernels"] <= 12 for w in after)
    # the result of a task is computed in that task: workers hold values, not pending graphs
    held = client.persist(chain)
    from distributed import wait
    wait(held)
    kinds = client.run(lambda dask_worker: {type(v._node).__name__ for v in dask_worker.data.values()
                                            if isinstance(v, tnp.ndarray)})
    assert set().union(*kinds.values()) == {"Leaf"}
    del held


def _profile_start(dask_worker):
    dask_worker._tilewise_profile = profiler.profile()
    dask_worker._tilewise_profile.__enter__()


def _profile_stop(dask_worker):
    prof = dask_worker._tilewise_profile
    prof.__exit__(None, None, None)
    return {k.name: k.launches for k in prof.kernels()}


def test_cluster_chain_is_one_kernel_launch_per_chunk(client):
    """On the workers, as in one process: Dask's fused task per chunk runs the whole chain as one
    launch of one kernel (profiled in each worker)."""
    xs, ys = _data(9, (8, 50_000)), _data(10, (8, 50_000))
    x, y = _tw(xs, (1, 50_000)), _tw(ys, (1, 50_000))  # 8 chunks
    chain = da.cos(x) * y - x / 3 + 2
    client.run(_profile_start)
    try:
        got = chain.compute()
    finally:
        launches = client.run(_profile_stop)
    _check(got, np.cos(xs) * ys - xs / np.float32(3) + 2)
    names = {name for per_worker in launches.values() for name in per_worker}
    assert len(names) == 1 and {"cos", "multiply", "true_divide"} <= set(names.pop()[12:-1].split(",")), launches
    assert sum(n for per_worker in launches.values() for n in per_worker.values()) == 8


def _slow_chunk(block):
    time.sleep(0.15)
    return block * 2 + 1


def test_killed_worker_is_replaced_and_result_is_right(client):
    n = 32 * 100_000
    x = twdask.to_tilewise(da.arange(n, chunks=100_000, dtype=np.float32))  # chunks made on the workers
    r = x.map_blocks(_slow_chunk, dtype=np.float32).sum(dtype=np.float64)  # 32 tasks of 0.15 s on 2 workers
    future = client.compute(r, retries=2)
    deadline = time.time() + 30
    while not any(client.processing().values()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # some chunks done, some running
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    assert not future.done()
    got = future.result(timeout=120)
    want = (np.arange(n, dtype=np.float32).astype(np.float64) * 2 + 1).sum()
    np.testing.assert_allclose(float(got), want, rtol=1e-6)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info()["workers"]
    states = client.run(_worker_state)
    assert len(states) == 2 and all(s["registered"] for s in states.values())  # the replacement preloads us
    assert pids[victim] not in client.run(os.getpid).values()


def test_plugin_sets_threads_on_workers(client):
    twdask.setup(client, num_threads=1)
    states = client.run(_worker_state)
    assert all(s["env"] == "1" and s["registered"] for s in states.values())


def test_benchmark_script_runs(client, capsys):
    """benchmarks/dask_chain.py at a toy size (it checks its own results), so it does not rot."""
    bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
    sys.path.insert(0, bench)
    try:
        import dask_chain
        ratio = dask_chain.main(["--n", "400000", "--repeat", "1"], client=client)
    finally:
        sys.path.remove(bench)
    assert ratio > 0 and capsys.readouterr().out.count("RESULT ") == 2


def _devices_held(dask_worker):
    return sorted({v.device for v in dask_worker.data.values() if isinstance(v, tnp.ndarray)})


def test_one_worker_per_device_keeps_chunks_there():
    """One worker per (emulated) GPU, as dask-cuda starts them: chunks made on a worker live on its
    device, and chunks sent to another worker land on that worker's device."""
    pytest.importorskip("distributed")
    from distributed import wait

    from tilewise import backends
    if "cuda-emulated" not in backends.available():
        pytest.skip("the emulated GPU needs a host C++ compiler")
    devices = ["cuda-emulated:0", "cuda-emulated:1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster, client = twdask.local_cluster(devices=devices, memory_limit="768MiB", dashboard_address=None)
    try:
        client.wait_for_workers(2, timeout=60)
        n = 400_000
        x = twdask.to_tilewise(da.arange(n, chunks=100_000, dtype=np.float32))
        y = client.persist(x * 2 + 1)
        wait(y)
        held = client.run(_devices_held)
        assert sorted(d for ds in held.values() for d in ds) == devices  # each worker: its own device only
        s = (y.rechunk(n) - 1).sum(dtype=np.float64).compute()  # rechunk moves chunks between workers
        assert float(s) == float((np.arange(n, dtype=np.float64) * 2).sum())
        got = y.compute()
        assert isinstance(got, tnp.ndarray) and got.device == "cpu"  # gathered to this process's device
        np.testing.assert_array_equal(np.asarray(got), np.arange(n, dtype=np.float32) * 2 + 1)
    finally:
        client.close()
        cluster.close()


def test_dask_arrays_take_precedence_over_tilewise_arrays():
    """Mixed with a Dask array, ours defers (NEP 13/18, register_chunk_type): the result is a Dask array
    with tilewise chunks, computed lazily, not our array made by computing the Dask array."""
    values = np.arange(8.0)
    x = tnp.asarray(values)
    d = da.from_array(tnp.asarray(np.full(8, 2.0)), chunks=4)
    for r, want in ((x + d, values + 2), (np.add(x, d), values + 2), (np.multiply(d, x), values * 2)):
        assert isinstance(r, da.Array) and isinstance(r._meta, tnp.ndarray)
        got = r.compute(scheduler="synchronous")
        assert isinstance(got, tnp.ndarray)
        np.testing.assert_array_equal(np.asarray(got), want)
