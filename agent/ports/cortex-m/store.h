/*
 * store.h - power-cut-safe records on the data flash.
 *
 * Each record slot owns two flash sectors (A and B). A write goes to the sector that does not
 * hold the newest copy: erase it, program the data, then program a header carrying a sequence
 * number and a CRC-32 over everything. A read takes the valid copy with the highest sequence
 * number. So a write torn by a power cut or a killed QEMU leaves the previous copy in force,
 * which is what the protocol asks of "durable" (docs/board-protocol.md 5.2). Deleting writes a
 * tombstone the same way.
 *
 * Slots 0-4 hold the core's records (enum agent_record), slots 5-6 the PSA Crypto internal
 * trusted storage (its.c), where mbedTLS keeps the persistent device key.
 */
#ifndef CM_STORE_H
#define CM_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_SLOTS 7u
#define STORE_ITS_FIRST_SLOT 5u
#define STORE_RECORD_MAX 8160u /* a sector minus the header */

typedef struct store_info {
    uint64_t uid;   /* the owner's identifier (ITS uid; the slot number for core records) */
    uint32_t flags; /* the owner's flags (PSA storage create flags) */
    uint32_t len;
} store_info_t;

/* 0 and *info when the slot holds a record, -1 when it holds none (never written, deleted). */
int store_stat(unsigned slot, store_info_t *info);
/* Copy len bytes of the record's data from offset into buf; 0 or -1. */
int store_get(unsigned slot, uint32_t offset, void *buf, size_t len);
/* Replace the slot's record atomically; 0 or -1 (flash failure, too large). */
int store_put(unsigned slot, uint64_t uid, uint32_t flags, const void *data, size_t len);
/* Delete the slot's record atomically (a tombstone); 0 or -1. */
int store_delete(unsigned slot);

#endif
