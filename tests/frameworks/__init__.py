"""Tests of the framework integrations, each through the framework's own test client."""
