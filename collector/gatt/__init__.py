"""Strict, total parsers of the Bluetooth SIG characteristics wearables send (one per profile)."""

from collector.errors import GattParseError
from collector.gatt.battery import BatteryLevel, parse_battery_level
from collector.gatt.date_time import DeviceDateTime
from collector.gatt.device_information import DeviceInformationString, PnpId, SystemId
from collector.gatt.dispatch import (
    STANDARD_CHARACTERISTICS,
    CharacteristicParser,
    Parser,
    decode,
    find_parser,
)
from collector.gatt.environmental_sensing import (
    EnvironmentalTemperature,
    parse_environmental_temperature,
)
from collector.gatt.health_thermometer import (
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    parse_temperature_measurement,
)
from collector.gatt.heart_rate import (
    BodySensorLocation,
    HeartRateMeasurement,
    SensorLocation,
    parse_body_sensor_location,
    parse_heart_rate_measurement,
)
from collector.gatt.ieee11073 import FloatSpecial
from collector.gatt.reader import PayloadReader
from collector.gatt.running_speed_cadence import (
    RscFeature,
    RscMeasurement,
    parse_rsc_feature,
    parse_rsc_measurement,
)
from collector.gatt.uuids import normalize_uuid, short_form
from collector.gatt.values import GattValue, JsonValue

__all__ = [
    "STANDARD_CHARACTERISTICS",
    "BatteryLevel",
    "BodySensorLocation",
    "CharacteristicParser",
    "DeviceDateTime",
    "DeviceInformationString",
    "EnvironmentalTemperature",
    "FloatSpecial",
    "GattParseError",
    "GattValue",
    "HeartRateMeasurement",
    "JsonValue",
    "Parser",
    "PayloadReader",
    "PnpId",
    "RscFeature",
    "RscMeasurement",
    "SensorLocation",
    "SystemId",
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureUnit",
    "decode",
    "find_parser",
    "normalize_uuid",
    "parse_battery_level",
    "parse_body_sensor_location",
    "parse_environmental_temperature",
    "parse_heart_rate_measurement",
    "parse_rsc_feature",
    "parse_rsc_measurement",
    "parse_temperature_measurement",
    "short_form",
]
