"""Test objectives (being written)."""
