"""Export files for cloud operators and the batch-manifest signing key."""
