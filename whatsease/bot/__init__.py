"""The built-in assistant: a catalogue-driven intent engine with contexts, slots and memory."""
