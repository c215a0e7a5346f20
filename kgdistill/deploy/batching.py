"""Dynamic batching for the server: predict requests that arrive while the model is busy are scored together
in one model call, so many clients with one input each cost about what one client with a batch costs.

No request waits for a batch to fill: a worker that is free takes the first waiting request at once, together
with whatever else is waiting (up to ``max_batch`` inputs of one shape).  ``concurrent`` batches are scored at
the same time, each in one of ``concurrent`` threads of the batcher's own (ONNX Runtime releases the GIL): a
shared pool would run them on ever other threads, and each new thread grows the process by its own allocator
arena.  When a merged batch fails, its requests are
scored again one by one, so an error reaches only the request that caused it."""
from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class _Job:
    inputs: Any                      # notes (list of str) or one array [n, ...]
    top_k: int
    future: asyncio.Future

    def joins(self, other: "_Job") -> bool:
        """Arrays are scored together only when their rows have one shape (a free axis may differ)."""
        return isinstance(self.inputs, list) or self.inputs.shape[1:] == other.inputs.shape[1:]


class Batcher:
    def __init__(self, predict: Callable[[Any, int], tuple[list, np.ndarray]], max_batch: int, concurrent: int,
                 observe: Callable[[int], None] = lambda n: None):
        self.predict, self.max_batch, self.observe = predict, max_batch, observe
        self.concurrent = concurrent
        self._pending: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._threads = ThreadPoolExecutor(concurrent, thread_name_prefix="kgdistill-score")

    async def submit(self, inputs: Any, top_k: int) -> tuple[list, np.ndarray]:
        """Ranked concepts and best scores of ``inputs``, as ``predict(inputs, top_k)`` gives them."""
        if not self._tasks:
            self._wake = asyncio.Event()
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self.concurrent)]
        job = _Job(inputs, top_k, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._wake.set()
        return await job.future

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._threads.shutdown(wait=True)

    async def _work(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            await self._score(self._take())

    def _take(self) -> list[_Job]:
        jobs = [self._pending.popleft()]
        size = len(jobs[0].inputs)
        while self._pending and size + len(self._pending[0].inputs) <= self.max_batch \
                and self._pending[0].joins(jobs[0]):
            jobs.append(self._pending.popleft())
            size += len(jobs[-1].inputs)
        return jobs

    async def _score(self, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]          # a request that timed out is not scored
        if not jobs:
            return
        inputs = (sum((j.inputs for j in jobs), []) if isinstance(jobs[0].inputs, list)
                  else np.concatenate([j.inputs for j in jobs]))
        try:
            ranked, best = await asyncio.get_running_loop().run_in_executor(
                self._threads, self.predict, inputs, max(j.top_k for j in jobs))
        except Exception as exc:  # noqa: BLE001 - handed to the request it belongs to
            if len(jobs) == 1:
                if not jobs[0].future.done():
                    jobs[0].future.set_exception(exc)
                return
            for j in jobs:
                await self._score([j])
            return
        self.observe(len(inputs))
        start = 0
        for j in jobs:
            n = len(j.inputs)
            if not j.future.done():
                j.future.set_result(([r[:j.top_k] for r in ranked[start:start + n]], best[start:start + n]))
            start += n
