"""One registry mechanism for every pluggable kind (encoders, GNNs, losses, stores, graph loaders).

A config names a part by key; a user adds a part by decorating a class or function::

    ENCODERS = Registry("encoder")

    @ENCODERS.register("mlp")
    class MLPEncoder(Encoder): ...

    ENCODERS.build("mlp", in_dim=10, dim=64)
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        key = name.lower()

        def deco(obj: T) -> T:
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[key] = obj
            setattr(obj, "registry_name", key)
            return obj

        return deco

    def get(self, name: str) -> T:
        key = str(name).lower()
        if key not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; expected one of: {known}")
        return self._items[key]

    def build(self, name: str, /, **kwargs: Any) -> Any:
        factory = self.get(name)
        try:
            return factory(**kwargs)  # type: ignore[operator]
        except TypeError as exc:
            raise ConfigError(f"{self.kind} {name!r}: {exc}") from None

    def __contains__(self, name: object) -> bool:
        return str(name).lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
