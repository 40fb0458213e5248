/*
 * psa/internal_trusted_storage.h - the PSA Internal Trusted Storage API (PSA Certified
 * "Secure Storage" 1.0) as the Cortex-M port implements it in its.c, on its data flash.
 */
#ifndef AGENT_CM_PSA_ITS_H
#define AGENT_CM_PSA_ITS_H

#include <stddef.h>
#include <stdint.h>

#include "psa/error.h"

typedef uint32_t psa_storage_create_flags_t;
typedef uint64_t psa_storage_uid_t;

#define PSA_STORAGE_FLAG_NONE 0u
#define PSA_STORAGE_FLAG_WRITE_ONCE (1u << 0)

struct psa_storage_info_t {
    uint32_t size;
    psa_storage_create_flags_t flags;
};

psa_status_t psa_its_set(psa_storage_uid_t uid, uint32_t data_length, const void *p_data,
                         psa_storage_create_flags_t create_flags);
psa_status_t psa_its_get(psa_storage_uid_t uid, uint32_t data_offset, uint32_t data_length,
                         void *p_data, size_t *p_data_length);
psa_status_t psa_its_get_info(psa_storage_uid_t uid, struct psa_storage_info_t *p_info);
psa_status_t psa_its_remove(psa_storage_uid_t uid);

#endif
