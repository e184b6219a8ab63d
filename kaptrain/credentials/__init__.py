"""Signed, offline-verifiable certificates: Open Badges 3.0 credentials with eddsa-rdfc-2022 proofs (see README.md)."""

from kaptrain.credentials.credential import CredentialData, Credit, build_credential, sign
from kaptrain.credentials.keys import KeyHistory, Keyring, KeyStoreError, PublicKey, SigningKey
from kaptrain.credentials.loader import ContextNotShipped, make_loader
from kaptrain.credentials.verification import Reason, StatusLookup, StatusUnavailable, Verdict, verify

__all__ = [
    "ContextNotShipped",
    "CredentialData",
    "Credit",
    "KeyHistory",
    "KeyStoreError",
    "Keyring",
    "PublicKey",
    "Reason",
    "SigningKey",
    "StatusLookup",
    "StatusUnavailable",
    "Verdict",
    "build_credential",
    "make_loader",
    "sign",
    "verify",
]
