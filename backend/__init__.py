"""Groundwork's Litestar application: one folder per domain, each with its tables, service and routes."""
