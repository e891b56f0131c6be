"""The chat session's rules as plain code: frames, delivery order, limits. No sockets here."""
