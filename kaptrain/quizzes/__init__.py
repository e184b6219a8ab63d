"""Quizzes: question banks with immutable revisions, attempts, server-side grading, item analysis."""
