"""A small background job queue kept in PostgreSQL: push delivery, lead-pool expiry, geofence events.

`service.py` puts jobs in (inside the caller's transaction); `worker.py` takes them out and runs them.
"""
