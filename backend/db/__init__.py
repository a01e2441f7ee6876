"""Database plumbing: the embedded cluster, engines and pools, table metadata, migrations."""
