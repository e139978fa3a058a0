"""Records: read and validate content/ (models, the loader and its error explanations,
rich text, time zones). The lowest room: it imports nothing of famfeeds but errors."""
