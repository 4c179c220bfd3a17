"""compute-api: an OpenStack-style Compute API v2.1 service."""
