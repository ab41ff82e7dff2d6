"""The Jobs web console: an HTML shell and its static assets, served by job-api itself."""

from job_api.console.routes import router

__all__ = ["router"]
