"""Courses: catalogue, enrolment, disclosures, progress and the module sequencing rule."""
