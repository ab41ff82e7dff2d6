"""job_api.handlers."""
