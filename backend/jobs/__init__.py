"""Field-service jobs: dispatch, a guarded lifecycle with an audit trail, and proof of work (code, place, photos)."""
