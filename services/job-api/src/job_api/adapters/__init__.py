"""job_api.adapters."""
