"""Outbound network calls to addresses that tenants control."""
