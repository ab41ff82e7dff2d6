"""Who may call job-api: API keys, console sessions, roles and their permissions."""
