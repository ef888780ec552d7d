"""Customer support: organisations, widget sessions, routing and agents."""
