"""Test helpers, in one place: tests import from here, never from each other."""
