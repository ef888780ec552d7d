"""Real-time: the one WebSocket transport, the messenger's socket, the client-frame protocol,
presence and typing."""
