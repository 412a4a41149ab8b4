"""The protection worker: the job store, share locks, the runner, housekeeping, the service."""
