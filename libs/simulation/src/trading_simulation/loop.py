"""A virtual-time asyncio loop: one thread, no real waiting, and every task owned by the component that made it.

Time moves only when nothing is ready to run: the loop jumps to the next timer instead of sleeping, so a 2 s
approval wait costs nothing. `asyncio.to_thread` runs its function inline (a broker call in the simulation is a
function call on the in-memory exchange), so nothing depends on thread scheduling. Each task remembers the
component incarnation whose context created it, which is what a crash cancels.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import selectors
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

# The component incarnation ("execution#3") a piece of code runs for; None for the simulation's own code.
INCARNATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("incarnation", default=None)


class SimulationDeadlock(RuntimeError):
    """Nothing is ready and no timer is set: every task waits for something that can never happen."""


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs the function in the caller's thread, at once: the default executor of the virtual loop."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # the awaiting coroutine sees it, as it would from a thread
            future.set_exception(error)
        return future


class _JumpingSelector(selectors.DefaultSelector):
    """Polls without blocking; a wait for the next timer moves the loop's clock to it instead."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        # No simulated component has a socket: only the loop's self-pipe is registered, and a wake-up through it
        # (call_soon_threadsafe) has already queued its callback. So there is nothing to poll.
        if timeout == 0:
            return []
        if timeout is None:
            raise SimulationDeadlock("no task can run and no timer is set")
        assert self.loop is not None
        self.loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0
        self.tasks_of: dict[str, weakref.WeakSet[asyncio.Task[Any]]] = {}
        self.set_default_executor(_InlineExecutor(max_workers=1))
        self.set_task_factory(self._make_task)  # type: ignore[arg-type]

    def time(self) -> float:
        return self.now

    def busy(self) -> bool:
        """Whether callbacks are ready to run now (without the clock moving)."""
        return bool(self._ready)  # type: ignore[attr-defined]

    def _make_task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
        owner = context.get(INCARNATION) if context is not None else INCARNATION.get()
        if owner is not None:
            self.tasks_of.setdefault(owner, weakref.WeakSet()).add(task)
        return task

    def spawn(self, incarnation: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run coro as a task of that incarnation (and every task it makes belongs to it too)."""
        context = contextvars.copy_context()
        context.run(INCARNATION.set, incarnation)
        return self.create_task(coro, context=context)

    def kill(self, incarnation: str) -> int:
        """Cancel every task of an incarnation (a crash); the number cancelled."""
        tasks = [t for t in self.tasks_of.pop(incarnation, weakref.WeakSet()) if not t.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)
