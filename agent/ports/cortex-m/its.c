/*
 * its.c - the PSA internal trusted storage (psa_its_*) mbedTLS calls to keep persistent keys,
 * on the board's data flash (store.c slots 5-6).
 *
 * mbedTLS's own implementation (MBEDTLS_PSA_ITS_FILE_C) writes files through stdio; a
 * microcontroller supplies these four functions instead. On this lab board the device key
 * therefore sits in (emulated) flash like any object: a product keeps it in a secure element
 * or at least in flash that debug access cannot read (docs/agent-porting.md).
 */
#include <string.h>

#include "psa/crypto.h"
#include "psa/internal_trusted_storage.h"
#include "store.h"

/* The slot holding uid, or -1. */
static int find(psa_storage_uid_t uid, store_info_t *info)
{
    for (unsigned slot = STORE_ITS_FIRST_SLOT; slot < STORE_SLOTS; slot++) {
        if (store_stat(slot, info) == 0 && info->uid == uid) {
            return (int)slot;
        }
    }
    return -1;
}

psa_status_t psa_its_set(psa_storage_uid_t uid, uint32_t data_length, const void *p_data,
                         psa_storage_create_flags_t create_flags)
{
    store_info_t info;
    int slot = find(uid, &info);
    if (slot >= 0 && (info.flags & PSA_STORAGE_FLAG_WRITE_ONCE)) {
        return PSA_ERROR_NOT_PERMITTED;
    }
    for (unsigned s = STORE_ITS_FIRST_SLOT; slot < 0 && s < STORE_SLOTS; s++) {
        if (store_stat(s, &info) != 0) {
            slot = (int)s;
        }
    }
    if (slot < 0 || data_length > STORE_RECORD_MAX) {
        return PSA_ERROR_INSUFFICIENT_STORAGE;
    }
    if (store_put((unsigned)slot, uid, create_flags, p_data, data_length) != 0) {
        return PSA_ERROR_STORAGE_FAILURE;
    }
    return PSA_SUCCESS;
}

psa_status_t psa_its_get(psa_storage_uid_t uid, uint32_t data_offset, uint32_t data_length,
                         void *p_data, size_t *p_data_length)
{
    store_info_t info;
    int slot = find(uid, &info);
    if (slot < 0) {
        return PSA_ERROR_DOES_NOT_EXIST;
    }
    /* the same contract as mbedTLS's file-based ITS: the range must lie inside the data */
    if ((uint64_t)data_offset + data_length > info.len) {
        return PSA_ERROR_INVALID_ARGUMENT;
    }
    if (store_get((unsigned)slot, data_offset, p_data, data_length) != 0) {
        return PSA_ERROR_STORAGE_FAILURE;
    }
    if (p_data_length != NULL) {
        *p_data_length = data_length;
    }
    return PSA_SUCCESS;
}

psa_status_t psa_its_get_info(psa_storage_uid_t uid, struct psa_storage_info_t *p_info)
{
    store_info_t info;
    if (find(uid, &info) < 0) {
        return PSA_ERROR_DOES_NOT_EXIST;
    }
    p_info->size = info.len;
    p_info->flags = info.flags;
    return PSA_SUCCESS;
}

psa_status_t psa_its_remove(psa_storage_uid_t uid)
{
    store_info_t info;
    int slot = find(uid, &info);
    if (slot < 0) {
        return PSA_ERROR_DOES_NOT_EXIST;
    }
    if (info.flags & PSA_STORAGE_FLAG_WRITE_ONCE) {
        return PSA_ERROR_NOT_PERMITTED;
    }
    return store_delete((unsigned)slot) == 0 ? PSA_SUCCESS : PSA_ERROR_STORAGE_FAILURE;
}
