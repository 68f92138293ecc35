"""Monitoring stage: input drift in the API, and where alerts go."""
