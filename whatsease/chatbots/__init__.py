"""Chatbot instances: operators' bots, each with a chat provider, an LLM provider and queues."""
