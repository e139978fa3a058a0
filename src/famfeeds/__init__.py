"""famfeeds: feeds, calendars and newsletters for a show's episodes, from plain text records."""

__version__ = "0.1.0"
