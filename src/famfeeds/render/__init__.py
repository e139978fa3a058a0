"""The pure side: records in, bytes out.

Nothing in this package reads the clock, files or the environment (ruff's banned-API rule
enforces it): the build passes in the reference date, the records, the template environment
and the calendar's published state, and takes bytes back.
"""
