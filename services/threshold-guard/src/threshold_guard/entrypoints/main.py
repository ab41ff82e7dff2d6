"""Console entry point of the threshold guard (`threshold-guard`)."""

import asyncio

from provisioning_common.logs import configure_logging

from threshold_guard.bootstrap import app_factory
from threshold_guard.settings import GuardSettings


def main() -> None:
    settings = GuardSettings()
    configure_logging("threshold-guard", settings.log_level)
    asyncio.run(app_factory(settings).run())


if __name__ == "__main__":
    main()
