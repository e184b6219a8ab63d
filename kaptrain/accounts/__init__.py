"""Accounts: registration, login (with two-factor sign-in), password reset, email ownership, profiles, roles."""
