"""Every core for all the work, with threads of the standard library.

Two kinds of work make a step: matrix products, which BLAS runs on threads of its own, and
the rest - im2col's copies, col2im's additions, ReLU, max pooling - NumPy loops, one core
each. NumPy releases the GIL inside both, so a batch can be cut into parts, one per core,
each part on its own thread:

    parts(n, fn)             calls fn(slice) for slices that cover range(n), all at once
    matmul(a, b, out, cut)   out = a b, its rows, columns or stacked matrices cut the same way

The two kinds of threads do not share the cores well: after each product OpenBLAS's idle
threads wait busy for a while, on the cores the element-wise parts want next (a ReLU cut in
two right after a product measured 1.6 ms, 1.1 ms uncut). So the cores belong to one or the
other. By default BLAS has them: products on BLAS's threads, nothing cut. With
:func:`set_own_cores` (BLAS limited to one thread, e.g. by threadpoolctl; see
:func:`numeral.train.cores.numeral_threads`) numeral has them: both kinds of work are cut
over its threads.

Only work that treats each sample (each output element of a product) on its own is cut, so
every value is computed by the same operations whatever the cut: the results are bit for bit
the same on 1, 2 or 16 threads. Small work is not cut (a thread hand-over costs about 20
microseconds).

``NUMERAL_THREADS`` (or :func:`set_threads`) sets how many parts; by default the BLAS's
thread setting, else the cores this process may run on.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

MIN_PART = 32_768  # values per part below which a cut costs more than it saves
MIN_PRODUCT = 1 << 20  # multiply-adds per part below which a product is not cut

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0  # the process that made it
_pool_workers = 0
_threads: int | None = None
_own_cores = False


def default_threads() -> int:
    """NUMERAL_THREADS, else the BLAS's own setting (a sweep's trial told to use one core
    keeps to it), else the cores this process may run on."""
    for name in ("NUMERAL_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads() -> int:
    """How many parts a batch is cut into."""
    return _threads if _threads is not None else default_threads()


def set_threads(count: int | None) -> None:
    """Use ``count`` threads from now on (None: the default again). 1 turns cutting off."""
    global _threads
    if count is not None and count < 1:
        raise ValueError(f"threads must be >= 1, got {count}")
    _threads = count


def set_own_cores(on: bool) -> None:
    """Cut the element-wise work and the products over numeral's threads (on), or leave the
    cores to BLAS (off, the default). On only with BLAS limited to one thread
    (``threadpoolctl.threadpool_limits(1)``; :func:`numeral.train.cores.numeral_threads`
    does both)."""
    global _own_cores
    _own_cores = bool(on)


def owns_cores() -> bool:
    """Whether :func:`parts` and :func:`matmul` cut their work over numeral's threads."""
    return _own_cores


def _executor(workers: int) -> ThreadPoolExecutor:
    """One pool per process (a forked child makes its own), grown when asked for more."""
    global _pool, _pool_pid, _pool_workers
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_workers < workers:
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)  # its threads end once their parts are done
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="numeral")
            _pool_pid, _pool_workers = os.getpid(), workers
        return _pool


def parts(n: int, fn: Callable[[slice], object], values_per_sample: int = 1) -> None:
    """fn(s) for consecutive slices s covering range(n): the first on this thread, the others
    on the pool's, at once; one slice unless numeral has the cores (:func:`set_own_cores`)
    or when the whole is under ``MIN_PART`` values per part."""
    count = min(threads(), n, n * values_per_sample // MIN_PART) if _own_cores else 1
    _run(count, n, fn)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray, cut: str = "rows") -> np.ndarray:
    """out = a b (``np.matmul``). When numeral has the cores, over its threads: the
    rows of a and out (``cut="rows"``), the columns of b and out (``"columns"``), or the
    stacked matrices of a 3-d b, a and out (``"stack"``; a 2-d a is shared)."""
    macs = a.shape[-2] * a.shape[-1] * b.shape[-1] * (b.shape[0] if b.ndim == 3 else 1)
    axis = {"rows": a.shape[-2], "columns": b.shape[-1], "stack": b.shape[0] if b.ndim == 3 else 1}
    n = axis[cut]
    count = min(threads(), n, macs // MIN_PRODUCT) if _own_cores else 1
    if count <= 1:
        return np.matmul(a, b, out=out)
    if cut == "rows":
        _run(count, n, lambda s: np.matmul(a[..., s, :], b, out=out[..., s, :]))
    elif cut == "columns":
        _run(count, n, lambda s: np.matmul(a, b[..., s], out=out[..., s]))
    else:
        _run(count, n, lambda s: np.matmul(a if a.ndim == 2 else a[s], b[s], out=out[s]))
    return out


def _run(count: int, n: int, fn: Callable[[slice], object]) -> None:
    """fn over ``count`` consecutive slices of range(n), at once."""
    if count <= 1:
        fn(slice(0, n))
        return
    bounds = [n * k // count for k in range(count + 1)]
    slices = [slice(bounds[k], bounds[k + 1]) for k in range(count)]
    pool = _executor(count - 1)
    futures: list[Future[object]] = [pool.submit(fn, s) for s in slices[1:]]
    try:
        fn(slices[0])
    finally:
        for future in futures:
            future.result()
