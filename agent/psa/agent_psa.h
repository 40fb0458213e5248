/*
 * agent_psa.h - the HAL's device-key and SHA-256 functions over the PSA Crypto API.
 *
 * Shared by every port that has mbedTLS (or another PSA Crypto implementation): the key is a
 * persistent PSA key (ECDSA P-256, usage sign-hash + export-public), so it lives wherever the
 * implementation's internal trusted storage (ITS) lives: files in the current directory on the
 * host port, flash on a microcontroller that supplies psa_its_*.
 *
 * Call agent_psa_init() once (it runs psa_crypto_init), then point the HAL's key_* and sha256
 * members at these functions; they ignore their ctx argument.
 */
#ifndef AGENT_PSA_H
#define AGENT_PSA_H

#include "agent_hal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The PSA persistent key ids of the device key (P-256) and the operational key (P-384). */
#define AGENT_PSA_DEVICE_KEY_ID 0x00010001u
#define AGENT_PSA_OPERATIONAL_KEY_ID 0x00010002u

/* psa_crypto_init(); AGENT_ST_OK or AGENT_ST_INTERNAL. */
int agent_psa_init(void);

int agent_psa_key_generate(void *ctx);
int agent_psa_key_import(void *ctx, const uint8_t d[AGENT_P256_SCALAR_SIZE]);
int agent_psa_key_public(void *ctx, uint8_t out[AGENT_P256_PUBLIC_SIZE]);
int agent_psa_key_sign_hash(void *ctx, const uint8_t hash[AGENT_SHA256_SIZE],
                            uint8_t sig[AGENT_P256_SIGNATURE_SIZE]);
int agent_psa_key_destroy(void *ctx);
int agent_psa_sha256(void *ctx, const uint8_t *data, size_t len, uint8_t out[AGENT_SHA256_SIZE]);

/* The operational key (ECDSA P-384 with SHA-384), for the HAL's op_key_* and sha384. */
int agent_psa_op_key_generate(void *ctx);
int agent_psa_op_key_public(void *ctx, uint8_t out[AGENT_P384_PUBLIC_SIZE]);
int agent_psa_op_key_sign_hash(void *ctx, const uint8_t hash[AGENT_SHA384_SIZE],
                               uint8_t sig[AGENT_P384_SIGNATURE_SIZE]);
int agent_psa_op_key_destroy(void *ctx);
int agent_psa_sha384(void *ctx, const uint8_t *data, size_t len, uint8_t out[AGENT_SHA384_SIZE]);

/* Fill the key_*, op_key_*, sha256 and sha384 members of hal with the functions above. */
void agent_psa_fill_hal(agent_hal_t *hal);

#ifdef __cplusplus
}
#endif

#endif /* AGENT_PSA_H */
