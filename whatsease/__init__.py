"""WhatsEase: a self-hostable WhatsApp-like messenger with an assistant and customer support."""

__version__ = "0.1.0"
