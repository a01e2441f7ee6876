"""Benchmarks of Groundwork's hot paths, each measured side by side with the SQL it sends, run by pgbench.

`./dev bench` runs them all (`python -m bench`; see bench/README.md). The figure that matters is the ratio of
endpoint throughput to pgbench throughput for the same SQL on the same server at the same concurrency
(ARCHITECTURE.md, Speed): it says how much of what PostgreSQL can serve survives the trip through Python.

Modules: `database` (the bench database and its data), `server` (the real app under uvicorn), `loadgen`
(wrk and pgbench runs), `cpu` (where the CPU went, from /proc), `nearby` (the nearby benchmark), `report`
(table and JSON result), `progress` (the `[bench]` lines and BenchError).
"""
