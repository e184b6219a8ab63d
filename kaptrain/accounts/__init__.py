"""Accounts: registration, login, profiles, roles."""
