"""The plan: pure rules from records to dated releases, the timetable and the newsletter's
issues. Records in, a plan out: no clock, no files, no environment."""
