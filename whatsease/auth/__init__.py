"""Accounts, passwords, access tokens and sessions."""
