"""One registry mechanism for every pluggable kind (encoders, GNNs, losses, stores, graph loaders).

A config names a part by key; a user adds a part by decorating a class or function::

    ENCODERS = Registry("encoder")

    @ENCODERS.register("mlp")
    class MLPEncoder(Encoder): ...

    ENCODERS.build("mlp", in_dim=10, dim=64)
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

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

    def accepted(self, name: str, supplied: tuple[str, ...] = ()) -> set[str]:
        """The keyword arguments the part's constructor takes, less ``supplied`` (what the caller fills in itself,
        e.g. input sizes).  A constructor that takes ``**kwargs`` passes them on: its class's parents count too."""
        factory = self.get(name)
        accepted: set[str] = set()
        for cls in (factory.__mro__ if inspect.isclass(factory) else (factory,)):
            fn = cls.__init__ if inspect.isclass(cls) else cls
            if fn is object.__init__:
                continue
            sig = inspect.signature(fn)
            accepted |= {p.name for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
            if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
                break
        return accepted - {"self", *supplied}

    def check_params(self, name: str, params: Mapping[str, Any], supplied: tuple[str, ...] = (),
                     also: tuple[str, ...] = ()) -> None:
        """ConfigError naming the first of ``params`` (a config part's own keys) that the part does not take;
        ``also``: keys the surrounding config section reads itself (listed as accepted too)."""
        accepted = self.accepted(name, supplied)
        for key in params:
            if key not in accepted:
                raise ConfigError(f"{key}: unknown key; {self.kind} {name!r} takes: "
                                  f"{', '.join(sorted(accepted | set(also))) or 'none'}")

    def __contains__(self, name: object) -> bool:
        return str(name).lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
