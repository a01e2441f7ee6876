"""Geodesy and location evidence: coordinate systems, distances, geofences, verdicts on location claims.

Pure maths over stdlib and shapely; nothing here touches the database, the web layer or the sync engine.
Import from the submodules (`geo.crs`, `geo.distance`, `geo.fence`, `geo.verdict`, `geo.postgis`).
"""
