"""Local Mosquitto, InfluxDB and PostgreSQL servers on free loopback ports (demo, tests, benches).

They run the real Debian binaries with the project's configuration from ``deploy/`` and a temporary
data directory. Nothing here is used in production, where the servers are managed by compose.
"""

from flarewatch.localservers.base import LocalServer, find_binary, free_port
from flarewatch.localservers.influxdb import InfluxServer
from flarewatch.localservers.mosquitto import MosquittoServer
from flarewatch.localservers.postgres import PostgresServer, find_postgres_binary

__all__ = [
    "InfluxServer",
    "LocalServer",
    "MosquittoServer",
    "PostgresServer",
    "find_binary",
    "find_postgres_binary",
    "free_port",
]
