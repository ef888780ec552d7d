"""Channels other than the web client: WhatsApp Cloud API, Telegram, loopback and third-party
providers, behind one interface (`whatsease.channels.base`)."""
