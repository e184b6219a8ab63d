"""Authoring: instructors write and revise modules and question banks in the browser, with drafts and checks."""
