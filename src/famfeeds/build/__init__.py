"""The build: the only stage with the clock, the disk and the caches. It loads the records,
plans, calls the pure renderers, and writes output/ (the pipeline, the cache, the writer,
the lock file, templates and catalogues, the preview server)."""
