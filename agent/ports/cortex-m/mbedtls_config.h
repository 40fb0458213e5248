/*
 * mbedtls_config.h - mbedTLS 2.28 (Debian 12's source package) configured for the Cortex-M
 * agent: exactly what the PSA Crypto calls of agent/psa/agent_psa.c need, and nothing else.
 *
 *   psa_generate_key / psa_import_key   ECP on secp256r1, an HMAC_DRBG seeded from entropy.c
 *   psa_sign_hash (ECDSA with SHA-256)   ECDSA, bignum
 *   psa_export_public_key                ECP point export
 *   psa_hash_compute (SHA-256)           SHA-256
 *   persistent keys                      PSA storage over psa_its_* from its.c (flash)
 *
 * Used through -DMBEDTLS_CONFIG_FILE="mbedtls_config.h" (see CMakeLists.txt). No TLS, X.509,
 * file system, time, network or heap: mbedTLS allocates from a static pool in main.c.
 */
#ifndef AGENT_CM_MBEDTLS_CONFIG_H
#define AGENT_CM_MBEDTLS_CONFIG_H

/* System: bare metal, Thumb-2 assembly for bignum multiplication. */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT /* mbedtls_hardware_poll() in entropy.c */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C

/* PSA Crypto with persistent keys in our own internal trusted storage. */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_PSA_CRYPTO_STORAGE_C
#define MBEDTLS_PSA_KEY_SLOT_COUNT 4

/* Random numbers for key generation and ECDSA nonces: HMAC_DRBG over SHA-256, which the
 * key code needs anyway (CTR_DRBG would bring AES and 8 KiB of tables along). */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_ENTROPY_FORCE_SHA256
#define MBEDTLS_HMAC_DRBG_C

/* ECDSA P-256 and SHA-256. */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED /* the operational key (DPS certificate management) */
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_WINDOW_SIZE 4
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0 /* fixed-point tables would cost RAM */
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_SHA512_C /* SHA-384 for the operational key's signatures */
#define MBEDTLS_MD_C

#include "mbedtls/check_config.h"

#endif
