"""Test fixtures for the platform (a pytest plugin, registered as `trading`)."""
