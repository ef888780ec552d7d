"""Messages and conversations: sending, history, edits and receipts."""
