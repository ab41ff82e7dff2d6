"""job_api.domain."""
