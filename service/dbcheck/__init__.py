"""What the datasource's own server says about an export before anyone approves it: the
functions a query calls (from the catalog), the plan and row estimate (EXPLAIN, never run)
and whether the datasource's user can do more than read."""
