"""Offline sync for phones: what the engine in sync/ syncs (collections) and applies (mutations), its HTTP
routes, and the WatermelonDB-compatible adapter over the same feed."""
