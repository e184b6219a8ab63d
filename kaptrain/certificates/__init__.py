"""Certificates of completion: issuing, verifying, and rendering them as PDF."""
