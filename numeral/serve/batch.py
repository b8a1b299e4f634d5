"""Micro-batching: the numerals of requests that arrive together go through the network in one
call.

A request hands its 28x28 inputs (one for a canvas, one per numeral for a whole number) to the
server's :class:`Batcher` and waits for their probabilities. The batcher's one task takes what
is waiting, up to ``max_batch`` inputs, runs the model on them together on a worker thread
(NumPy releases the GIL, so the event loop goes on reading and decoding requests meanwhile),
and answers each request with its own rows. While one batch runs the next one gathers, so
under load the batches grow by themselves and the network's cost per numeral falls (its
matrix products get wider); a lone request waits for nobody.

When over ``max_queue`` inputs already wait, a new request is refused with
:class:`Overloaded` (the app answers 503 with Retry-After) rather than queued without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import anyio
import numpy as np


class Overloaded(Exception):
    """More inputs wait for the network than the batcher queues: come back later."""


class Batcher:
    """Runs ``model(inputs)`` -> one row per input over the inputs of concurrent callers."""

    def __init__(self, model: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 64,
                 max_queue: int = 1024, inline: Callable[[int], bool] = lambda size: False
                 ) -> None:
        self.model = model
        self.inline = inline  # whether a batch of this size runs on the event loop
        self.max_batch, self.max_queue = max_batch, max_queue
        self.waiting: deque[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = deque()
        self.queued = 0  # inputs waiting, over all requests
        self.running: asyncio.Task[None] | None = None

    async def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """The model's rows for ``inputs`` (k, ...), computed in a batch with others'."""
        if self.queued + len(inputs) > self.max_queue:
            raise Overloaded(f"{self.queued} numerals are waiting for the network")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.waiting.append((inputs, future))
        self.queued += len(inputs)
        if self.running is None or self.running.done():
            self.running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Run batches while inputs wait; each caller gets its rows or the model's error."""
        while self.waiting:
            taken: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
            size = 0
            while self.waiting and (not taken or size + len(self.waiting[0][0])
                                    <= self.max_batch):
                item = self.waiting.popleft()
                taken.append(item)
                size += len(item[0])
            self.queued -= size
            batch = np.concatenate([inputs for inputs, _ in taken])
            try:
                if self.inline(size):  # a lone request: the hand-over would cost more
                    rows = self.model(batch)
                else:
                    rows = await anyio.to_thread.run_sync(self.model, batch)
            except Exception as exc:  # the callers' error, not the batcher's
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for inputs, future in taken:
                if not future.done():  # its request may have been cancelled
                    future.set_result(rows[start : start + len(inputs)])
                start += len(inputs)
