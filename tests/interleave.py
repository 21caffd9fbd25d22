"""Force an interleaving: run a callback right before or after chosen boto3 calls of one client.

``Intercept(client)`` stands in for a boto3 S3 client; ``before("put_object", fn, key=...)`` and
``after(...)`` attach a callback that runs once (or every time, with ``times=None``) when a call with
those parameters is made. The callback sees the call's keyword arguments, so a test can, for example,
delete a reference exactly between a writer's delta PUT and its reference check. Calls that match nothing
go straight to the real client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Action = Callable[[dict[str, Any]], None]


@dataclass
class _Hook:
    method: str
    when: str
    action: Callable[[dict[str, Any]], None]
    match: dict[str, Any]
    times: int | None
    fired: int = 0

    def wants(self, method: str, when: str, params: dict[str, Any]) -> bool:
        if method != self.method or when != self.when:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        return all(params.get(k) == v for k, v in self.match.items())


@dataclass
class Intercept:
    client: Any
    hooks: list[_Hook] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def before(self, method: str, action: Action, *, times: int | None = 1, **match: Any) -> _Hook:
        hook = _Hook(method, "before", action, match, times)
        self.hooks.append(hook)
        return hook

    def after(self, method: str, action: Action, *, times: int | None = 1, **match: Any) -> _Hook:
        hook = _Hook(method, "after", action, match, times)
        self.hooks.append(hook)
        return hook

    def _run(self, method: str, when: str, params: dict[str, Any]) -> None:
        for hook in self.hooks:
            if hook.wants(method, when, params):
                hook.fired += 1
                hook.action(params)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        if not callable(real) or name.startswith("_") or name in ("get_paginator", "meta"):
            return real

        def call(**params: Any) -> Any:
            self.calls.append((name, params))
            self._run(name, "before", params)
            result = real(**params)
            self._run(name, "after", params)
            return result

        return call
