"""Tests of the instructor pages."""
