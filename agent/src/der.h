/*
 * der.h - the few DER structures the agent builds and reads: a P-256 SubjectPublicKeyInfo,
 * an ECDSA signature, a PKCS#10 CSR with CN only, and a PKCS#8 P-256 private key.
 *
 * The CSR is assembled here, not by the crypto library, so that a port needs only a
 * sign-hash primitive: that is all a secure element (or PSA's opaque keys) offers.
 */
#ifndef AGENT_DER_H
#define AGENT_DER_H

#include <stddef.h>
#include <stdint.h>

#include "agent_hal.h"

#define AGENT_SPKI_SIZE 91u   /* DER SubjectPublicKeyInfo of a P-256 key */
#define AGENT_SIG_DER_MAX 72u /* DER SEQUENCE { r, s } of a P-256 signature */

/* The SubjectPublicKeyInfo of an uncompressed P-256 point (04 || X || Y). */
void der_spki(const uint8_t pub[AGENT_P256_PUBLIC_SIZE], uint8_t out[AGENT_SPKI_SIZE]);

/* DER SEQUENCE { INTEGER r, INTEGER s } from r || s; returns its length. */
size_t der_signature(const uint8_t rs[AGENT_P256_SIGNATURE_SIZE], uint8_t out[AGENT_SIG_DER_MAX]);

/* The CertificationRequestInfo (to be signed) for subject CN=cn and key pub; returns its
 * length, or 0 if it does not fit in cap. */
size_t der_csr_info(const uint8_t *cn, size_t cn_len, const uint8_t pub[AGENT_P256_PUBLIC_SIZE],
                    uint8_t *out, size_t cap);

/* The whole CSR around info (which must sit at out, as der_csr_info left it) and the DER
 * signature; returns the CSR's length, or 0 if it does not fit in cap. */
size_t der_csr_finish(uint8_t *out, size_t cap, size_t info_len, const uint8_t *sig,
                      size_t sig_len);

/* Extract the private scalar of an unencrypted PKCS#8 P-256 key; 0 on success, -1 if der is
 * anything else. */
int der_pkcs8_p256(const uint8_t *der, size_t len, uint8_t d[AGENT_P256_SCALAR_SIZE]);

#endif /* AGENT_DER_H */
