"""Fraud detection: SQL rules over clicks, registrations and events (issue 16)."""
