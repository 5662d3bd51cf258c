"""The registry of device profiles: standard ones plus vendor plug-ins loaded by module name.

Built by a function (``default_registry``), never at import time, so tests and gateways each get
their own; ``register`` returns the function that unregisters (as habluetooth does).
"""

from __future__ import annotations

import importlib
import logging
import uuid as uuid_module
from collections.abc import Callable, Iterable, Sequence

from collector.errors import GattParseError
from collector.gatt import GattValue, decode, normalize_uuid
from collector.profiles.base import DeviceDescription, DeviceProfile
from collector.profiles.plan import MeasurementPlan
from collector.profiles.standard import STANDARD_PROFILES
from flarewatch.errors import ConfigError

log = logging.getLogger(__name__)

PLUGIN_ATTRIBUTE = "PROFILES"
"""A plug-in module exposes its profiles as ``PROFILES: tuple[DeviceProfile, ...]``."""


class ProfileRegistry:
    """Known device profiles, by unique name; matches devices and builds measurement plans."""

    def __init__(self, profiles: Iterable[DeviceProfile] = ()) -> None:
        self._profiles: dict[str, DeviceProfile] = {}
        for profile in profiles:
            self.register(profile)

    @property
    def profiles(self) -> tuple[DeviceProfile, ...]:
        """Every registered profile, highest priority first."""
        return tuple(sorted(self._profiles.values(), key=lambda p: (-p.priority, p.name)))

    def register(self, profile: DeviceProfile) -> Callable[[], None]:
        """Add ``profile``; returns the function that removes it again."""
        if profile.name in self._profiles:
            raise ConfigError(f"device profile {profile.name!r} is registered twice")
        self._profiles[profile.name] = profile

        def unregister() -> None:
            self._profiles.pop(profile.name, None)

        return unregister

    def get(self, name: str) -> DeviceProfile:
        """The profile called ``name``; ``ConfigError`` listing the known names otherwise."""
        try:
            return self._profiles[name]
        except KeyError:
            known = ", ".join(sorted(self._profiles))
            raise ConfigError(f"unknown device profile {name!r}; known: {known}") from None

    def load_plugin(self, module_name: str) -> tuple[DeviceProfile, ...]:
        """Import a plug-in module and register its ``PROFILES``; errors say what to fix."""
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"cannot import device profile plug-in {module_name!r}: {exc}"
            ) from exc
        profiles = getattr(module, PLUGIN_ATTRIBUTE, None)
        if not isinstance(profiles, tuple) or not all(
            isinstance(p, DeviceProfile) for p in profiles
        ):
            raise ConfigError(
                f"plug-in {module_name!r} must define {PLUGIN_ATTRIBUTE} as a tuple of "
                "DeviceProfile (see docs/device-profiles.md)"
            )
        for profile in profiles:
            self.register(profile)
        log.debug("loaded device profile plug-in %s: %s", module_name, [p.name for p in profiles])
        return profiles

    def match(self, device: DeviceDescription) -> tuple[DeviceProfile, ...]:
        """Profiles recognising ``device``, highest priority first (empty: none applies)."""
        return tuple(p for p in self.profiles if p.applies_to(device))

    def plan_for(
        self, device: DeviceDescription, *, profile_names: Sequence[str] = ()
    ) -> MeasurementPlan:
        """The measurement plan of ``device``: named profiles if given, else the matching ones."""
        if profile_names:
            return MeasurementPlan.of(tuple(self.get(name) for name in profile_names))
        return MeasurementPlan.of(self.match(device))

    def decode(
        self,
        uuid: str | int | uuid_module.UUID,
        data: bytes | bytearray | memoryview,
        *,
        device_id: str | None = None,
    ) -> GattValue:
        """Decode a characteristic of any registered profile, else of the SIG parsers."""
        try:
            canonical = normalize_uuid(uuid)
        except GattParseError as exc:
            raise exc.for_device(device_id) from None
        plan = MeasurementPlan.of(self.profiles)
        if canonical in plan.measurements:
            return plan.decode(canonical, data, device_id=device_id)[1]
        return decode(canonical, data, device_id=device_id)


def default_registry(plugin_modules: Sequence[str] = ()) -> ProfileRegistry:
    """A registry of the standard profiles plus the plug-ins named in the configuration."""
    registry = ProfileRegistry(STANDARD_PROFILES)
    for module_name in plugin_modules:
        registry.load_plugin(module_name)
    return registry
