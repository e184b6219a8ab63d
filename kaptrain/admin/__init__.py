"""Administration: accommodations now; people, roles and certificates as they arrive."""
