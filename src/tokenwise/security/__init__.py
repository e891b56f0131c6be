"""Passwords, signing keys, access tokens and the JWKS the API verifies them against."""
