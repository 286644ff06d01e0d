"""Runnable examples (each is also run by tests/test_examples.py)."""
