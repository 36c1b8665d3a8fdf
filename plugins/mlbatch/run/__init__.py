"""Running a batch: the DAG factory, the step operator, job requests, failure classes and run-time helpers."""
