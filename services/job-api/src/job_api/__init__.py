"""job_api."""
