"""pytest plugin: fixtures that run the mock server (filled in by the mock-server issue)."""
