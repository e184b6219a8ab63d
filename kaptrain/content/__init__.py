"""Content: courses, modules and their immutable revisions; files in and out; Markdown rendering."""
