"""The server's dynamic batching (kgdistill.deploy.batching.Batcher) with a model whose calls are recorded and
held until the test lets them finish, so which requests share a call is decided by the test, not by timing."""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from kgdistill.deploy.batching import Batcher
from kgdistill.errors import DataError


class HeldModel:
    """predict(inputs, top_k): each input x ranks the concepts f"{x}:0", f"{x}:1", ... with best score len(x);
    an input "bad" raises DataError.  Every call waits for ``release`` (set it to let calls finish)."""

    def __init__(self):
        self.calls: list[tuple[list, int]] = []
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def predict(self, inputs, top_k):
        rows = [str(x) if isinstance(x, str) else f"{x.shape}" for x in inputs]
        self.calls.append((rows, top_k))
        self.started.release()
        self.release.wait(10)
        if "bad" in rows:
            raise DataError("a bad input")
        ranked = [[f"{r}:{k}" for k in range(top_k)] for r in rows]
        return ranked, np.asarray([float(len(r)) for r in rows])


async def _started(model: HeldModel, n: int = 1) -> None:
    for _ in range(n):
        await asyncio.to_thread(model.started.acquire, True, 10)


def _behind_a_busy_call(model: HeldModel, first: tuple, later: list[tuple], **batcher) -> list:
    """Submit ``first`` (inputs, top_k), wait until the model is busy with it, submit each of ``later`` meanwhile,
    then let every call finish: each request's result, or its exception, in order of submission."""
    async def go():
        b = Batcher(model.predict, **batcher)
        tasks = [asyncio.create_task(b.submit(*first))]
        await _started(model)
        tasks += [asyncio.create_task(b.submit(*request)) for request in later]
        await asyncio.sleep(0.05)
        model.release.set()
        out = await asyncio.gather(*tasks, return_exceptions=True)
        await b.close()
        return out

    return asyncio.run(go())


def test_requests_that_arrive_while_the_model_is_busy_share_one_call():
    model, sizes = HeldModel(), []
    out = _behind_a_busy_call(model, (["a"], 2), [(["bb", "c"], 1), (["dddd"], 3), (["e"], 2)],
                              max_batch=64, concurrent=1, observe=sizes.append)
    assert model.calls == [(["a"], 2), (["bb", "c", "dddd", "e"], 3)]     # top_k: the largest asked for
    assert sizes == [1, 4]
    (r1, b1), (r2, b2), (r3, b3), (r4, b4) = out
    assert r1 == [["a:0", "a:1"]] and b1.tolist() == [1.0]
    assert r2 == [["bb:0"], ["c:0"]] and b2.tolist() == [2.0, 1.0]       # each request's own top_k
    assert r3 == [["dddd:0", "dddd:1", "dddd:2"]] and b3.tolist() == [4.0]
    assert r4 == [["e:0", "e:1"]] and b4.tolist() == [1.0]


def test_a_merged_call_respects_max_batch_and_never_mixes_array_shapes():
    model = HeldModel()
    arrays = [np.zeros((1, 2, 5)), np.zeros((1, 2, 5)), np.zeros((1, 2, 7)), np.zeros((1, 2, 5))]
    _behind_a_busy_call(model, (["x"], 1), [(a, 1) for a in arrays], max_batch=3, concurrent=1)
    assert [rows for rows, _ in model.calls] == [["x"], ["(2, 5)", "(2, 5)"], ["(2, 7)"], ["(2, 5)"]]


def test_an_error_reaches_only_the_request_that_caused_it():
    model = HeldModel()
    first, good, bad, other = _behind_a_busy_call(model, (["a"], 1), [(["g"], 1), (["bad"], 1), (["o", "p"], 1)],
                                                  max_batch=64, concurrent=1)
    assert isinstance(bad, DataError) and str(bad) == "a bad input"
    assert good[0] == [["g:0"]] and other[0] == [["o:0"], ["p:0"]] and first[0] == [["a:0"]]
    # the merged call failed, then each request was scored alone
    assert [rows for rows, _ in model.calls] == [["a"], ["g", "bad", "o", "p"], ["g"], ["bad"], ["o", "p"]]


def test_a_request_given_up_before_its_turn_is_never_scored():
    model = HeldModel()

    async def go():
        b = Batcher(model.predict, max_batch=64, concurrent=1)
        first = asyncio.create_task(b.submit(["a"], 1))
        await _started(model)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.submit(["late"], 1), 0.05)
        kept = asyncio.create_task(b.submit(["kept"], 1))
        await asyncio.sleep(0.05)
        model.release.set()
        await asyncio.gather(first, kept)
        await b.close()

    asyncio.run(go())
    assert [rows for rows, _ in model.calls] == [["a"], ["kept"]]


def test_concurrent_calls_score_batches_at_the_same_time():
    model = HeldModel()

    async def go():
        b = Batcher(model.predict, max_batch=1, concurrent=2)
        tasks = [asyncio.create_task(b.submit([c], 1)) for c in "abc"]
        await _started(model, 2)               # two calls running at once, before any is released
        running = len(model.calls)
        model.release.set()
        await asyncio.gather(*tasks)
        await b.close()
        return running

    assert asyncio.run(go()) == 2
    assert sorted(rows[0] for rows, _ in model.calls) == ["a", "b", "c"]
