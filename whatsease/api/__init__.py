"""REST handlers: parse, authorise, call one service, write JSON."""
