"""Where the stages extract → match keys → plan run when not in the embedded DuckDB.

`engines/spark/` runs them as Spark jobs and hands the pipeline the same `Plan` the embedded
planner returns, so loading, the ledger and the report are shared (docs/architecture.md, "Engines").
"""
