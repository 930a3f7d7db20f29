"""Reports written next to every export: data first (JSON), then a page for people."""
