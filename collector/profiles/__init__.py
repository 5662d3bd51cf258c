"""Device profiles: recognise a wearable and map its characteristics to contract sample fields."""

from collector.profiles.base import (
    STANDARD_PRIORITY,
    VENDOR_PRIORITY,
    DeviceDescription,
    DeviceMatch,
    DeviceProfile,
    FieldAccumulator,
    Measurement,
    SampleFieldValue,
    Subscription,
    no_sample_fields,
)
from collector.profiles.plan import DecodedCharacteristic, MeasurementPlan
from collector.profiles.registry import PLUGIN_ATTRIBUTE, ProfileRegistry, default_registry
from collector.profiles.sample_fields import conform_to_contract
from collector.profiles.standard import (
    BATTERY,
    DEVICE_INFORMATION,
    ENVIRONMENTAL_SENSING,
    HEALTH_THERMOMETER,
    HEART_RATE,
    RUNNING_SPEED_CADENCE,
    STANDARD_PROFILES,
)
from collector.profiles.steps import CadenceSteps

__all__ = [
    "BATTERY",
    "DEVICE_INFORMATION",
    "ENVIRONMENTAL_SENSING",
    "HEALTH_THERMOMETER",
    "HEART_RATE",
    "PLUGIN_ATTRIBUTE",
    "RUNNING_SPEED_CADENCE",
    "STANDARD_PRIORITY",
    "STANDARD_PROFILES",
    "VENDOR_PRIORITY",
    "CadenceSteps",
    "DecodedCharacteristic",
    "DeviceDescription",
    "DeviceMatch",
    "DeviceProfile",
    "FieldAccumulator",
    "Measurement",
    "MeasurementPlan",
    "ProfileRegistry",
    "SampleFieldValue",
    "Subscription",
    "conform_to_contract",
    "default_registry",
    "no_sample_fields",
]
