"""Channels other than the web client (WhatsApp Cloud API)."""
