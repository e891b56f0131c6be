"""Event buses: how stored run events reach every connection of their user, in any process."""
