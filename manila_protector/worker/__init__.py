"""The protection worker: jobs, the journal, per-share locks, the runner and the service."""
