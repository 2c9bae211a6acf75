"""The Prefect flows: one module per operation (its body only calls tasks in order and reports
stages), the skeleton they share, the batch flows, the sweep, and the catalog of them all."""
