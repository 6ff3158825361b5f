"""Sandboxed account tests (real login/sudo/su); a package so its conftest does not shadow Tests/Integration/conftest.py."""
