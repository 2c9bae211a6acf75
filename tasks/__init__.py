"""Thin Prefect tasks, one module per external dependency: each calls one plain function of the
core and adds Prefect's concerns (retries on transient faults, cache keys, tags, progress)."""
