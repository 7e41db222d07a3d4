"""Running a search's tasks: the study loop, one attempt (the failure boundary), the
reporter's events, and the backends (this process, worker processes, a dask cluster)."""
