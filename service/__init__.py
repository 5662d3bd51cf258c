"""The flarewatch service: MQTT ingest, sample stores, detection, episodes, alerts, API."""
