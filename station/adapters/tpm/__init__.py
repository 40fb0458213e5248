"""TPM access: a PyTCTI over the board link, EK and EK certificate reading."""
