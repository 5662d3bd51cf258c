"""The flarewatch collector: wearables (BLE, simulator, replay) to MQTT without losing a sample."""
