/*
 * der.h - the few DER structures the agent builds and reads: a P-256 or P-384
 * SubjectPublicKeyInfo, an ECDSA signature, a PKCS#10 CSR with CN only (ECDSA-SHA256 for the
 * P-256 device key, ECDSA-SHA384 for the P-384 operational key), and a PKCS#8 P-256 private key.
 *
 * The CSR is assembled here, not by the crypto library, so that a port needs only a
 * sign-hash primitive: that is all a secure element (or PSA's opaque keys) offers.
 */
#ifndef AGENT_DER_H
#define AGENT_DER_H

#include <stddef.h>
#include <stdint.h>

#include "agent_hal.h"

/* The curves of the agent's two key slots. */
enum der_curve { DER_P256 = 0, DER_P384 = 1 };

#define AGENT_SPKI_SIZE 91u       /* DER SubjectPublicKeyInfo of a P-256 key */
#define AGENT_SPKI_P384_SIZE 120u /* ... of a P-384 key */
#define AGENT_SIG_DER_MAX 104u    /* DER SEQUENCE { r, s } of a P-384 signature (P-256: 72) */

/* Sizes of curve's uncompressed point (04 || X || Y), its SPKI and its r || s signature. */
size_t der_point_size(enum der_curve curve);
size_t der_spki_size(enum der_curve curve);
size_t der_rs_size(enum der_curve curve);

/* The SubjectPublicKeyInfo of an uncompressed point of curve (der_spki_size bytes). */
void der_spki(enum der_curve curve, const uint8_t *pub, uint8_t *out);

/* DER SEQUENCE { INTEGER r, INTEGER s } from r || s of curve; returns its length. */
size_t der_signature(enum der_curve curve, const uint8_t *rs, uint8_t out[AGENT_SIG_DER_MAX]);

/* The CertificationRequestInfo (to be signed) for subject CN=cn and key pub of curve; returns
 * its length, or 0 if it does not fit in cap. */
size_t der_csr_info(enum der_curve curve, const uint8_t *cn, size_t cn_len, const uint8_t *pub,
                    uint8_t *out, size_t cap);

/* The whole CSR around info (which must sit at out, as der_csr_info left it) and the DER
 * signature (ECDSA-SHA256 for P-256, ECDSA-SHA384 for P-384); returns the CSR's length, or 0
 * if it does not fit in cap. */
size_t der_csr_finish(enum der_curve curve, uint8_t *out, size_t cap, size_t info_len,
                      const uint8_t *sig, size_t sig_len);

/* Extract the private scalar of an unencrypted PKCS#8 P-256 key; 0 on success, -1 if der is
 * anything else. */
int der_pkcs8_p256(const uint8_t *der, size_t len, uint8_t d[AGENT_P256_SCALAR_SIZE]);

#endif /* AGENT_DER_H */
