"""`trustwh bench`: the warehouse measured against a bare DuckDB load of the same files."""
