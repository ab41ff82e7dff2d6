"""Console entry point of the threshold guard (`threshold-guard`)."""

import asyncio
from typing import cast

from faststream.kafka import KafkaBroker
from provisioning_common.health import serve_health
from provisioning_common.logs import configure_logging

from threshold_guard.bootstrap import app_factory
from threshold_guard.settings import GuardSettings

# /livez, /readyz and /metrics, unless HEALTH_PORT says otherwise (0: none).
HEALTH_PORT = 8082


def main() -> None:
    settings = GuardSettings()
    configure_logging("threshold-guard", settings.log_level)
    asyncio.run(serve(settings))


async def serve(settings: GuardSettings) -> None:
    # Built inside the running loop, so every client binds to it.
    app = app_factory(settings)
    serve_health(app, cast("KafkaBroker", app.broker), "threshold-guard", HEALTH_PORT)
    await app.run()


if __name__ == "__main__":
    main()
