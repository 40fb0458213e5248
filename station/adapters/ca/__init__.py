"""The station's CA on top of :mod:`hsm` and cryptography.

CSR parsing, certificate building, chain checks, the CA's files and the lab root.
"""
