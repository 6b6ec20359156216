"""Signed e-licenses: VC 2.0 with eddsa-jcs-2022 proofs, signing keys, issuance, verification."""
