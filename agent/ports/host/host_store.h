/*
 * host_store.h - the HAL's object storage as files: one file per record, replaced atomically
 * (write a temporary file, fsync, rename, fsync the folder).
 */
#ifndef HOST_STORE_H
#define HOST_STORE_H

#include "agent_hal.h"

/* Use folder dir (created if missing) for the records; 0 or -1. */
int host_store_open(const char *dir);

int host_store_read(void *ctx, enum agent_record id, uint8_t *buf, size_t cap, size_t *len);
int host_store_write(void *ctx, enum agent_record id, const uint8_t *data, size_t len);
int host_store_erase(void *ctx, enum agent_record id);

#endif /* HOST_STORE_H */
