"""Analytics for operators: conversations, messages, the bot, agents and sentiment over time."""
