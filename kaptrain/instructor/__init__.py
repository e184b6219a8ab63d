"""Instructors' read-only views of a course: where each learner stands, and the evaluation summary."""
