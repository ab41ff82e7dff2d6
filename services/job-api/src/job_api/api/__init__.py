"""The REST API of job-api under /api/v1, its console session calls and system endpoints."""

# In each router's own prefix (not added at include time), so a route's path is its full
# template: metrics label requests with it.
API_PREFIX = "/api/v1"
