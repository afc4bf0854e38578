"""Batch extraction: many documents through ``call_llm`` with a bounded number in flight.

``extract_many`` yields ``(index, ExtractionAttempt)`` as calls finish;
``extract_many_ordered`` yields them in input order. Both read ``documents`` lazily:
a document is pulled only when a slot is free, so memory stays flat whatever the corpus
size. A slot is a call in flight or, for the ordered stream, a finished result still
waiting for an earlier one; ``concurrency`` slots in all. The ``*_sync`` twins drive the
same code on a private event loop, one step per ``next()``.

This is thin Python orchestration over ``call_llm``: the HTTP work, retries and JSON
repair happen in the native engine, and cancelling a task here aborts its transfer there.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from ._client import ExtractionAttempt

__all__ = ["BatchMixin", "BatchResults", "SyncBatchResults"]

Documents = Union[Iterable[str], AsyncIterable[str]]
Result = tuple[int, "ExtractionAttempt"]

_END = object()  # the document source is exhausted


def _check_concurrency(concurrency: object) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(f"concurrency must be an int >= 1, got {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    return concurrency


def _check_documents(documents: Any) -> None:
    if isinstance(documents, (str, bytes, bytearray)):
        raise TypeError(
            "documents must be an iterable of str (a list, a generator, an async iterator), "
            f"not a single {type(documents).__name__}"
        )
    if not isinstance(documents, (Iterable, AsyncIterable)):
        raise TypeError(
            "documents must be an iterable or async iterable of str, "
            f"got {type(documents).__name__}"
        )


class _Run:
    """One batch: the slots, the source, the tasks in flight and the results ready."""

    def __init__(
        self,
        client: BatchMixin,
        documents: Documents,
        prompts: Mapping[str, Any],
        json_schema: Mapping[str, Any] | None,
        concurrency: int,
        ordered: bool,
    ) -> None:
        self.client = client
        self.documents = documents
        self.prompts = prompts
        self.json_schema = json_schema
        self.concurrency = concurrency
        self.ordered = ordered
        self.running: set[asyncio.Task[Result]] = set()
        self.ready: collections.deque[asyncio.Task[Result]] = collections.deque()
        self.buffered: dict[int, ExtractionAttempt] = {}  # ordered: finished, not yet due
        self.fetch: asyncio.Task[Any] | None = None  # async source: the pending pull
        self.wake: asyncio.Future[None] | None = None

    def _wake_up(self, _: object = None) -> None:
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _done(self, task: asyncio.Task[Result]) -> None:
        self.running.discard(task)
        self.ready.append(task)
        self._wake_up()

    async def _one(self, index: int, document: str) -> Result:
        try:
            return index, await self.client.call_llm(self.prompts, self.json_schema, document)
        except (TypeError, ValueError) as exc:
            # The message names the argument, never quotes the document; add which one.
            raise type(exc)(f"document {index}: {exc}") from None

    def _start(self, index: int, document: object) -> None:
        if not isinstance(document, str):
            raise TypeError(f"document {index} must be str, got {type(document).__name__}")
        task = asyncio.get_running_loop().create_task(self._one(index, document))
        self.running.add(task)
        task.add_done_callback(self._done)

    def _slots_used(self) -> int:
        return len(self.running) + len(self.ready) + len(self.buffered)

    async def results(self) -> AsyncGenerator[Result, None]:
        loop = asyncio.get_running_loop()
        sync_source: Iterator[object] | None = None
        async_source: AsyncIterator[object] | None = None
        if isinstance(self.documents, AsyncIterable):
            async_source = self.documents.__aiter__()
        else:
            sync_source = iter(self.documents)
        exhausted = False
        pulled = 0  # index of the next document
        due = 0  # ordered: index of the next result to yield
        try:
            while True:
                # Fill the free slots. A sync source is read here (it is the caller's to
                # keep quick); an async one through a task, so that results keep flowing
                # while it waits.
                while (
                    not exhausted and self.fetch is None and self._slots_used() < self.concurrency
                ):
                    if sync_source is not None:
                        document = next(sync_source, _END)
                        if document is _END:
                            exhausted = True
                        else:
                            self._start(pulled, document)
                            pulled += 1
                    else:
                        assert async_source is not None
                        self.fetch = loop.create_task(_pull(async_source))
                        self.fetch.add_done_callback(self._wake_up)
                if self.fetch is not None and self.fetch.done():
                    fetch, self.fetch = self.fetch, None
                    document = fetch.result()  # the source's own exception propagates
                    if document is _END:
                        exhausted = True
                    else:
                        self._start(pulled, document)
                        pulled += 1
                    continue
                if self.ready:
                    task = self.ready.popleft()
                    index, attempt = task.result()
                    if not self.ordered:
                        yield index, attempt
                        continue
                    self.buffered[index] = attempt
                    while due in self.buffered:
                        # Popped before the yield: a consumer that stops here leaves
                        # nothing behind.
                        attempt = self.buffered.pop(due)
                        due += 1
                        yield due - 1, attempt
                    continue
                if exhausted and not self.running:
                    return
                self.wake = loop.create_future()
                try:
                    await self.wake
                finally:
                    self.wake = None
        finally:
            await self._cancel_all()

    async def _cancel_all(self) -> None:
        """Cancel every call in flight (their transfers are aborted) and the pending pull,
        and wait until they have finished, so nothing of this batch is left running."""
        tasks: list[asyncio.Task[Any]] = list(self.running)
        if self.fetch is not None:
            tasks.append(self.fetch)
            self.fetch = None
        for task in tasks:
            task.cancel()
        if tasks:
            # gather retrieves every outcome: no "exception was never retrieved" later.
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in self.ready:  # finished, never yielded: retrieve, then drop
            if not task.cancelled():
                task.exception()
        self.running.clear()
        self.ready.clear()
        self.buffered.clear()


async def _pull(source: AsyncIterator[object]) -> object:
    try:
        return await source.__anext__()
    except StopAsyncIteration:
        return _END


class BatchResults:
    """The results of ``extract_many`` / ``extract_many_ordered``: an async iterator of
    ``(index, ExtractionAttempt)``, and an async context manager.

    Leaving ``async with``, ``aclose()``, or cancelling the task that iterates stops
    reading documents, cancels the calls in flight (their transfers are aborted) and waits
    for them. Breaking out of a bare ``async for`` does the same as soon as the loop runs
    again (asyncio finalises the abandoned generator); use ``async with`` or ``aclose()``
    to have it done before the next line.
    """

    __slots__ = ("_gen",)

    def __init__(self, gen: AsyncGenerator[Result, None]) -> None:
        self._gen = gen

    def __aiter__(self) -> BatchResults:
        return self

    async def __anext__(self) -> Result:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop: no more documents are read, calls in flight are cancelled and awaited."""
        await self._gen.aclose()

    async def __aenter__(self) -> BatchResults:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncBatchResults:
    """The blocking twin of :class:`BatchResults`: a plain iterator (and context manager)
    that runs the batch on a private event loop, advancing it at each ``next()``. Calls in
    flight keep running in the native engine between two ``next()`` calls. ``close()`` (or
    leaving ``with``, or dropping the iterator) cancels what is in flight."""

    __slots__ = ("_gen", "_loop", "_step")

    def __init__(self, gen: AsyncGenerator[Result, None]) -> None:
        self._gen = gen
        self._loop: asyncio.AbstractEventLoop | None = None
        self._step: asyncio.Task[Result] | None = None

    def __iter__(self) -> SyncBatchResults:
        return self

    def __next__(self) -> Result:
        loop = self._loop
        if loop is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                raise RuntimeError(
                    "extract_many_sync() cannot run inside a running event loop; "
                    "use `async for ... in client.extract_many(...)` there"
                )
            loop = self._loop = asyncio.new_event_loop()
        if loop.is_closed():
            raise StopIteration
        step = self._step = loop.create_task(_next(self._gen))
        try:
            result = loop.run_until_complete(step)
        except StopAsyncIteration:
            self.close()
            raise StopIteration from None
        except BaseException:  # KeyboardInterrupt included: stop the batch, then re-raise
            self.close()
            raise
        self._step = None
        return result

    def close(self) -> None:
        """Cancel the calls in flight, wait for them, and release the private loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        step, self._step = self._step, None
        try:
            if step is not None and not step.done():
                # Interrupted inside next(): the generator is suspended in that step;
                # cancelling it runs the generator's cleanup.
                step.cancel()
                loop.run_until_complete(asyncio.gather(step, return_exceptions=True))
            loop.run_until_complete(self._gen.aclose())
        finally:
            loop.close()

    def __enter__(self) -> SyncBatchResults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed() and not loop.is_running():
            self.close()


async def _next(gen: AsyncGenerator[Result, None]) -> Result:
    return await gen.__anext__()


class BatchMixin:
    """extract_many and its ordered and blocking twins, for every client."""

    if TYPE_CHECKING:
        # Defined by _BaseClient (_client.py), the class that mixes this in.
        async def call_llm(
            self,
            prompts: Mapping[str, Any],
            json_schema: Mapping[str, Any] | None = None,
            document_text: str = "",
        ) -> ExtractionAttempt: ...

    def _batch(
        self,
        documents: Documents,
        prompts: Mapping[str, Any],
        json_schema: Mapping[str, Any] | None,
        concurrency: int,
        ordered: bool,
    ) -> AsyncGenerator[Result, None]:
        from ._client import _call_args

        # Checked now, not at the first document: a bad argument is the caller's mistake.
        concurrency = _check_concurrency(concurrency)
        _check_documents(documents)
        _call_args(prompts, json_schema, "")
        run = _Run(self, documents, prompts, json_schema, concurrency, ordered)
        return run.results()

    def extract_many(
        self,
        documents: Documents,
        prompts: Mapping[str, Any],
        json_schema: Mapping[str, Any] | None = None,
        *,
        concurrency: int = 64,
    ) -> BatchResults:
        """Extract from many documents, at most ``concurrency`` calls in flight:
        ``async for index, attempt in client.extract_many(docs, prompts, schema)``.

        Results come as they finish (``index`` is the document's position in
        ``documents``). ``documents`` is any iterable or async iterable of str, read only
        when a slot is free. Server and model problems are per document, in the attempt;
        a document that is not a str raises TypeError naming its index.
        """
        return BatchResults(self._batch(documents, prompts, json_schema, concurrency, False))

    def extract_many_ordered(
        self,
        documents: Documents,
        prompts: Mapping[str, Any],
        json_schema: Mapping[str, Any] | None = None,
        *,
        concurrency: int = 64,
    ) -> BatchResults:
        """As :meth:`extract_many`, with the results in input order. Finished results
        wait for the earlier ones and keep their slots meanwhile, so memory stays bounded
        but one slow document holds back the stream (and the slots behind it)."""
        return BatchResults(self._batch(documents, prompts, json_schema, concurrency, True))

    def extract_many_sync(
        self,
        documents: Documents,
        prompts: Mapping[str, Any],
        json_schema: Mapping[str, Any] | None = None,
        *,
        concurrency: int = 64,
    ) -> SyncBatchResults:
        """Blocking twin of :meth:`extract_many`: a plain iterator of
        ``(index, ExtractionAttempt)`` in completion order."""
        return SyncBatchResults(self._batch(documents, prompts, json_schema, concurrency, False))

    def extract_many_ordered_sync(
        self,
        documents: Documents,
        prompts: Mapping[str, Any],
        json_schema: Mapping[str, Any] | None = None,
        *,
        concurrency: int = 64,
    ) -> SyncBatchResults:
        """Blocking twin of :meth:`extract_many_ordered`."""
        return SyncBatchResults(self._batch(documents, prompts, json_schema, concurrency, True))
