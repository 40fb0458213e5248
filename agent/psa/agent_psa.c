/*
 * agent_psa.c - the device key (ECDSA P-256) and the operational key (ECDSA P-384) as
 * persistent PSA Crypto keys.
 */
#include "agent_psa.h"

#include <psa/crypto.h>

#define DEVICE_KEY ((psa_key_id_t)AGENT_PSA_DEVICE_KEY_ID)
#define ECDSA_SHA256 PSA_ALG_ECDSA(PSA_ALG_SHA_256)
#define OPERATIONAL_KEY ((psa_key_id_t)AGENT_PSA_OPERATIONAL_KEY_ID)
#define ECDSA_SHA384 PSA_ALG_ECDSA(PSA_ALG_SHA_384)

static int from_psa(psa_status_t status)
{
    switch (status) {
    case PSA_SUCCESS:
        return AGENT_ST_OK;
    case PSA_ERROR_INVALID_HANDLE:
    case PSA_ERROR_DOES_NOT_EXIST:
        return AGENT_ST_NOT_FOUND;
    case PSA_ERROR_INVALID_ARGUMENT:
        return AGENT_ST_BAD_ARGS;
    default:
        return AGENT_ST_INTERNAL;
    }
}

static void key_attributes(psa_key_attributes_t *attributes, int persistent)
{
    *attributes = psa_key_attributes_init();
    psa_set_key_type(attributes, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1));
    psa_set_key_bits(attributes, 256);
    psa_set_key_usage_flags(attributes, PSA_KEY_USAGE_SIGN_HASH);
    psa_set_key_algorithm(attributes, ECDSA_SHA256);
    if (persistent) {
        psa_set_key_id(attributes, DEVICE_KEY);
    }
}

int agent_psa_init(void)
{
    return psa_crypto_init() == PSA_SUCCESS ? AGENT_ST_OK : AGENT_ST_INTERNAL;
}

int agent_psa_key_destroy(void *ctx)
{
    psa_status_t status = psa_destroy_key(DEVICE_KEY);
    (void)ctx;
    return (status == PSA_SUCCESS || from_psa(status) == AGENT_ST_NOT_FOUND) ? AGENT_ST_OK
                                                                             : AGENT_ST_INTERNAL;
}

int agent_psa_key_generate(void *ctx)
{
    psa_key_attributes_t attributes;
    psa_key_id_t id = 0;
    int st = agent_psa_key_destroy(ctx);
    if (st != AGENT_ST_OK) {
        return st;
    }
    key_attributes(&attributes, 1);
    st = from_psa(psa_generate_key(&attributes, &id));
    psa_reset_key_attributes(&attributes);
    return st == AGENT_ST_OK ? st : AGENT_ST_INTERNAL;
}

int agent_psa_key_import(void *ctx, const uint8_t d[AGENT_P256_SCALAR_SIZE])
{
    psa_key_attributes_t attributes;
    psa_key_id_t id = 0;
    psa_status_t status;
    int st;
    /* validate as a volatile key first: a bad scalar must not cost the key already held */
    key_attributes(&attributes, 0);
    status = psa_import_key(&attributes, d, AGENT_P256_SCALAR_SIZE, &id);
    if (status != PSA_SUCCESS) {
        return status == PSA_ERROR_INVALID_ARGUMENT ? AGENT_ST_BAD_ARGS : AGENT_ST_INTERNAL;
    }
    (void)psa_destroy_key(id);
    st = agent_psa_key_destroy(ctx);
    if (st != AGENT_ST_OK) {
        return st;
    }
    key_attributes(&attributes, 1);
    status = psa_import_key(&attributes, d, AGENT_P256_SCALAR_SIZE, &id);
    psa_reset_key_attributes(&attributes);
    return status == PSA_SUCCESS ? AGENT_ST_OK : AGENT_ST_INTERNAL;
}

int agent_psa_key_public(void *ctx, uint8_t out[AGENT_P256_PUBLIC_SIZE])
{
    size_t len = 0;
    int st = from_psa(psa_export_public_key(DEVICE_KEY, out, AGENT_P256_PUBLIC_SIZE, &len));
    (void)ctx;
    if (st == AGENT_ST_OK && len != AGENT_P256_PUBLIC_SIZE) {
        return AGENT_ST_INTERNAL;
    }
    return st == AGENT_ST_BAD_ARGS ? AGENT_ST_INTERNAL : st;
}

int agent_psa_key_sign_hash(void *ctx, const uint8_t hash[AGENT_SHA256_SIZE],
                            uint8_t sig[AGENT_P256_SIGNATURE_SIZE])
{
    size_t len = 0;
    int st = from_psa(psa_sign_hash(DEVICE_KEY, ECDSA_SHA256, hash, AGENT_SHA256_SIZE, sig,
                                    AGENT_P256_SIGNATURE_SIZE, &len));
    (void)ctx;
    if (st == AGENT_ST_OK && len != AGENT_P256_SIGNATURE_SIZE) {
        return AGENT_ST_INTERNAL;
    }
    return st == AGENT_ST_BAD_ARGS ? AGENT_ST_INTERNAL : st;
}

int agent_psa_sha256(void *ctx, const uint8_t *data, size_t len, uint8_t out[AGENT_SHA256_SIZE])
{
    size_t out_len = 0;
    psa_status_t status =
        psa_hash_compute(PSA_ALG_SHA_256, data, len, out, AGENT_SHA256_SIZE, &out_len);
    (void)ctx;
    return (status == PSA_SUCCESS && out_len == AGENT_SHA256_SIZE) ? AGENT_ST_OK
                                                                   : AGENT_ST_INTERNAL;
}

int agent_psa_op_key_destroy(void *ctx)
{
    psa_status_t status = psa_destroy_key(OPERATIONAL_KEY);
    (void)ctx;
    return (status == PSA_SUCCESS || from_psa(status) == AGENT_ST_NOT_FOUND) ? AGENT_ST_OK
                                                                             : AGENT_ST_INTERNAL;
}

int agent_psa_op_key_generate(void *ctx)
{
    psa_key_attributes_t attributes = psa_key_attributes_init();
    psa_key_id_t id = 0;
    int st = agent_psa_op_key_destroy(ctx);
    if (st != AGENT_ST_OK) {
        return st;
    }
    psa_set_key_type(&attributes, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1));
    psa_set_key_bits(&attributes, 384);
    psa_set_key_usage_flags(&attributes, PSA_KEY_USAGE_SIGN_HASH);
    psa_set_key_algorithm(&attributes, ECDSA_SHA384);
    psa_set_key_id(&attributes, OPERATIONAL_KEY);
    st = from_psa(psa_generate_key(&attributes, &id));
    psa_reset_key_attributes(&attributes);
    return st == AGENT_ST_OK ? st : AGENT_ST_INTERNAL;
}

int agent_psa_op_key_public(void *ctx, uint8_t out[AGENT_P384_PUBLIC_SIZE])
{
    size_t len = 0;
    int st =
        from_psa(psa_export_public_key(OPERATIONAL_KEY, out, AGENT_P384_PUBLIC_SIZE, &len));
    (void)ctx;
    if (st == AGENT_ST_OK && len != AGENT_P384_PUBLIC_SIZE) {
        return AGENT_ST_INTERNAL;
    }
    return st == AGENT_ST_BAD_ARGS ? AGENT_ST_INTERNAL : st;
}

int agent_psa_op_key_sign_hash(void *ctx, const uint8_t hash[AGENT_SHA384_SIZE],
                               uint8_t sig[AGENT_P384_SIGNATURE_SIZE])
{
    size_t len = 0;
    int st = from_psa(psa_sign_hash(OPERATIONAL_KEY, ECDSA_SHA384, hash, AGENT_SHA384_SIZE, sig,
                                    AGENT_P384_SIGNATURE_SIZE, &len));
    (void)ctx;
    if (st == AGENT_ST_OK && len != AGENT_P384_SIGNATURE_SIZE) {
        return AGENT_ST_INTERNAL;
    }
    return st == AGENT_ST_BAD_ARGS ? AGENT_ST_INTERNAL : st;
}

int agent_psa_sha384(void *ctx, const uint8_t *data, size_t len, uint8_t out[AGENT_SHA384_SIZE])
{
    size_t out_len = 0;
    psa_status_t status =
        psa_hash_compute(PSA_ALG_SHA_384, data, len, out, AGENT_SHA384_SIZE, &out_len);
    (void)ctx;
    return (status == PSA_SUCCESS && out_len == AGENT_SHA384_SIZE) ? AGENT_ST_OK
                                                                   : AGENT_ST_INTERNAL;
}

void agent_psa_fill_hal(agent_hal_t *hal)
{
    hal->op_key_generate = agent_psa_op_key_generate;
    hal->op_key_public = agent_psa_op_key_public;
    hal->op_key_sign_hash = agent_psa_op_key_sign_hash;
    hal->op_key_destroy = agent_psa_op_key_destroy;
    hal->sha384 = agent_psa_sha384;
    hal->key_generate = agent_psa_key_generate;
    hal->key_import = agent_psa_key_import;
    hal->key_public = agent_psa_key_public;
    hal->key_sign_hash = agent_psa_key_sign_hash;
    hal->key_destroy = agent_psa_key_destroy;
    hal->sha256 = agent_psa_sha256;
}
