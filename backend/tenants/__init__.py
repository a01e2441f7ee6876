"""Tenants and the settings each tenant tunes (the verification policy)."""
