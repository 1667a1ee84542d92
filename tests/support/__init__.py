"""Test support: the session cluster, the HTTP client, and helpers shared by test modules."""
