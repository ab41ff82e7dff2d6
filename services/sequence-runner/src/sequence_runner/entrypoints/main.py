"""Console entry point of the sequence runner (`sequence-runner`)."""

import asyncio

from provisioning_common.logs import configure_logging

from sequence_runner.bootstrap import app_factory
from sequence_runner.domain.collector import freeze_startup_objects
from sequence_runner.settings import RunnerSettings


async def serve(settings: RunnerSettings) -> None:
    # Built inside the running loop, so every client binds to it.
    app = app_factory(settings)
    freeze_startup_objects()
    await app.run()


def main() -> None:
    settings = RunnerSettings()
    configure_logging("sequence-runner", settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
