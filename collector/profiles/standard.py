"""The Bluetooth SIG profiles every gateway knows: heart rate, thermometers, cadence, battery, info.

Mappings to the contract: a Health Thermometer or Environmental Sensing temperature becomes
``skin_temperature_c`` (the contract's only temperature, and what a wrist or patch sensor
measures), except readings labelled as taken at a core-body site (mouth, rectum, ear, tympanum,
gastro-intestinal tract), which would otherwise look like extreme skin warming. A Running Speed
and Cadence cadence becomes ``steps`` (``collector.profiles.steps``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from collector.gatt import (
    STANDARD_CHARACTERISTICS,
    BatteryLevel,
    EnvironmentalTemperature,
    HeartRateMeasurement,
    TemperatureMeasurement,
    TemperatureType,
    parse_battery_level,
    parse_body_sensor_location,
    parse_environmental_temperature,
    parse_heart_rate_measurement,
    parse_rsc_feature,
    parse_rsc_measurement,
    parse_temperature_measurement,
)
from collector.gatt import uuids as u
from collector.gatt.device_information import STRING_FIELDS
from collector.profiles.base import (
    DeviceMatch,
    DeviceProfile,
    Measurement,
    SampleFieldValue,
    Subscription,
)
from collector.profiles.steps import CadenceSteps

CORE_BODY_SITES = frozenset(
    {
        TemperatureType.MOUTH,
        TemperatureType.RECTUM,
        TemperatureType.EAR,
        TemperatureType.TYMPANUM,
        TemperatureType.GASTROINTESTINAL_TRACT,
    }
)
"""Temperature Type values (HTS §3.2.1) that measure core, not skin, temperature."""


def heart_rate_fields(value: HeartRateMeasurement) -> Mapping[str, SampleFieldValue]:
    """Heart rate, RR intervals, energy and contact of a Heart Rate Measurement."""
    fields: dict[str, SampleFieldValue] = {"heart_rate_bpm": float(value.heart_rate_bpm)}
    if value.rr_intervals_s:
        fields["rr_intervals_s"] = value.rr_intervals_s
    if value.energy_expended_kj is not None:
        fields["energy_expended_kj"] = value.energy_expended_kj
    if value.contact_detected is not None:
        fields["contact_detected"] = value.contact_detected
    return fields


def thermometer_fields(value: TemperatureMeasurement) -> Mapping[str, SampleFieldValue]:
    """Skin temperature of a Temperature Measurement, unless taken at a core-body site."""
    if value.temperature_c is None or value.temperature_type in CORE_BODY_SITES:
        return {}
    return {"skin_temperature_c": value.temperature_c}


def environmental_temperature_fields(
    value: EnvironmentalTemperature,
) -> Mapping[str, SampleFieldValue]:
    """Skin temperature of an Environmental Sensing Temperature (absent when "not known")."""
    return {} if value.temperature_c is None else {"skin_temperature_c": value.temperature_c}


def battery_fields(value: BatteryLevel) -> Mapping[str, SampleFieldValue]:
    """Battery percentage."""
    return {"battery_percent": value.battery_percent}


HEART_RATE = DeviceProfile(
    name="heart_rate",
    description="Heart Rate Service 0x180D: heart rate, RR intervals, energy, skin contact",
    matches=(DeviceMatch(service_uuids=frozenset({u.HEART_RATE_SERVICE})),),
    measurements=(
        Measurement(
            u.HEART_RATE_MEASUREMENT,
            "heart_rate_measurement",
            parse_heart_rate_measurement,
            heart_rate_fields,
            subscribe=Subscription.NOTIFY,
            required=True,
        ),
        Measurement(
            u.BODY_SENSOR_LOCATION,
            "body_sensor_location",
            parse_body_sensor_location,
            read_on_connect=True,
        ),
    ),
)

HEALTH_THERMOMETER = DeviceProfile(
    name="health_thermometer",
    description="Health Thermometer Service 0x1809: skin temperature (indicated and intermediate)",
    matches=(DeviceMatch(service_uuids=frozenset({u.HEALTH_THERMOMETER_SERVICE})),),
    measurements=(
        # 0x2A1C is indicate-only (HTS §3.1); 0x2A1E, optional, notifies (HTS §3.3).
        Measurement(
            u.TEMPERATURE_MEASUREMENT,
            "temperature_measurement",
            parse_temperature_measurement,
            thermometer_fields,
            subscribe=Subscription.INDICATE,
            required=True,
        ),
        Measurement(
            u.INTERMEDIATE_TEMPERATURE,
            "intermediate_temperature",
            functools.partial(parse_temperature_measurement, uuid=u.INTERMEDIATE_TEMPERATURE),
            thermometer_fields,
            subscribe=Subscription.NOTIFY,
        ),
    ),
)

ENVIRONMENTAL_SENSING = DeviceProfile(
    name="environmental_sensing",
    description="Environmental Sensing Service 0x181A: temperature of a skin-worn sensor",
    matches=(DeviceMatch(service_uuids=frozenset({u.ENVIRONMENTAL_SENSING_SERVICE})),),
    measurements=(
        Measurement(
            u.ENVIRONMENTAL_TEMPERATURE,
            "temperature",
            parse_environmental_temperature,
            environmental_temperature_fields,
            subscribe=Subscription.NOTIFY,
            read_on_connect=True,
            required=True,
        ),
    ),
)

RUNNING_SPEED_CADENCE = DeviceProfile(
    name="running_speed_cadence",
    description="Running Speed and Cadence Service 0x1814: steps from the walking/running cadence",
    matches=(DeviceMatch(service_uuids=frozenset({u.RUNNING_SPEED_CADENCE_SERVICE})),),
    measurements=(
        Measurement(
            u.RSC_MEASUREMENT,
            "rsc_measurement",
            parse_rsc_measurement,
            subscribe=Subscription.NOTIFY,
            required=True,
            accumulator=CadenceSteps,
        ),
        Measurement(u.RSC_FEATURE, "rsc_feature", parse_rsc_feature, read_on_connect=True),
    ),
)

BATTERY = DeviceProfile(
    name="battery",
    description="Battery Service 0x180F: charge, read on connect and notified when supported",
    matches=(DeviceMatch(service_uuids=frozenset({u.BATTERY_SERVICE})),),
    measurements=(
        Measurement(
            u.BATTERY_LEVEL,
            "battery_level",
            parse_battery_level,
            battery_fields,
            subscribe=Subscription.NOTIFY,  # notify is optional (BAS §3.1): check properties
            read_on_connect=True,
            required=True,
        ),
    ),
)

DEVICE_INFORMATION = DeviceProfile(
    name="device_information",
    description="Device Information Service 0x180A: manufacturer, model, firmware (metadata)",
    matches=(DeviceMatch(service_uuids=frozenset({u.DEVICE_INFORMATION_SERVICE})),),
    measurements=tuple(
        Measurement(uuid, entry.name, entry.parse, read_on_connect=True)
        for uuid in (*STRING_FIELDS, u.SYSTEM_ID, u.PNP_ID)
        if (entry := STANDARD_CHARACTERISTICS[uuid])
    ),
)

STANDARD_PROFILES = (
    HEART_RATE,
    HEALTH_THERMOMETER,
    ENVIRONMENTAL_SENSING,
    RUNNING_SPEED_CADENCE,
    BATTERY,
    DEVICE_INFORMATION,
)
"""Every Bluetooth SIG profile shipped, registered by ``default_registry()``."""
