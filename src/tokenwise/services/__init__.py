"""Application services: plain async code over storage and the bus, shared by every adapter."""
