"""job_api.entrypoints."""
