"""The `platform` fixture lives in tests/platform.py and is registered once, by tests/conftest.py."""
