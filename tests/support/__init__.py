"""Shared test infrastructure (real servers, helpers). Not a test package: no tests live here."""
