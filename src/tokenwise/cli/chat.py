"""`tokenwise chat`: registered here; implemented in tokenwise.client (in progress)."""
