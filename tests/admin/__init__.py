"""Tests of the administration console."""
