"""The base of every per-patient streaming detector (river / scikit-learn conventions).

Constructor arguments are the parameters, stored unchanged under their own names, with no work
in ``__init__``; everything learned from data is plain attributes created lazily, so ``clone()``
gives a fresh detector for a new patient and ``state_dict()`` a JSON-able snapshot.
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Self

from flarewatch.payloads import Sample
from models.alarm import Alarm


class StreamingDetector(ABC):
    """One patient's detector: feed samples in time order, receive alarms."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def clone(self, **overrides: Any) -> Self:
        """A new detector with the same parameters (plus ``overrides``) and no state."""
        params = self.get_params()
        params.update(overrides)
        return type(self)(**params)

    def state_dict(self) -> dict[str, Any]:
        """Everything learned so far (not the parameters), as JSON-able plain data."""
        params = set(self._param_names())
        return {k: self._export(v) for k, v in vars(self).items() if k not in params}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from this class and version)."""
        self._import_state(copy.deepcopy(state))

    @staticmethod
    def _export(value: Any) -> Any:
        return copy.deepcopy(value)

    def _import_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    @abstractmethod
    def update(self, samples: Iterable[Sample]) -> list[Alarm]:
        """Fold samples (oldest first) into the state; return the alarms they trigger."""

    @abstractmethod
    def check_silence(self, now_s: float) -> list[Alarm]:
        """Alarms due because no sample arrived by ``now_s`` (signal states only)."""
