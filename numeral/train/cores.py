"""Every core for every kind of work while a network trains.

BLAS (the matrix products) and :mod:`numeral.nn.parallel` (the element-wise work) each keep
threads of their own. On a machine with few cores they get in each other's way: after each
product OpenBLAS's idle threads wait busy for a while, on the cores the element-wise parts
want next. :func:`numeral_threads` gives all the work to numeral's threads instead: BLAS is
limited to one thread (threadpoolctl), and the element-wise work and the products are cut
over numeral's threads (:func:`numeral.nn.parallel.set_own_cores`). The number of threads stays
:func:`numeral.nn.parallel.threads` (``NUMERAL_THREADS``, else the BLAS setting, else the
cores), so the work is cut the same way on every run on one machine.

Only for networks with image layers (convolutions, pooling): there the element-wise work is
a third of a step and BLAS's spinning threads slow it. A multi-layer perceptron has little
of it, and its products (batch 128) run faster on BLAS's own threads than cut in two:
``benchmarks/bench_core.py`` measured its step at 2.06 ms on BLAS's threads, 2.65 ms cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from numeral.nn import Network, parallel


@contextmanager
def numeral_threads(net: Network) -> Iterator[None]:
    """Within: BLAS on one thread, all the work cut over numeral's threads, when ``net``
    has image layers (else BLAS keeps the cores). Without threadpoolctl, or with one
    thread, nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # BLAS keeps its own threads
        yield
        return
    images = any(layer.needs_image for layer in net.body)
    if not images or parallel.threads() <= 1 or parallel.owns_cores():
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        parallel.set_own_cores(True)
        try:
            yield
        finally:
            parallel.set_own_cores(False)
