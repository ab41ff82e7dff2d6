"""The shared contract of the provisioning services: events, commands, statuses, settings."""
