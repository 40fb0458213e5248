/*
 * store.c - A/B record slots on the data flash (see store.h).
 */
#include "store.h"

#include <stddef.h>
#include <string.h>

#include "flash.h"
#include "station_agent.h"

#define RECORD_MAGIC 0x53524543u /* "SREC" */
#define FLAG_DELETED 0x80000000u

typedef struct header {
    uint32_t magic;
    uint32_t seq;
    uint64_t uid;
    uint32_t flags;
    uint32_t len;
    uint32_t data_crc; /* CRC-32 of the data */
    uint32_t crc;      /* CRC-32 of the fields above */
} header_t;

_Static_assert(sizeof(header_t) == 32, "header layout");
_Static_assert(STORE_RECORD_MAX == FLASH_SECTOR_SIZE - sizeof(header_t), "record size");

static unsigned sector_of(unsigned slot, unsigned half)
{
    return FLASH_FIRST_STORE_SECTOR + 2u * slot + half;
}

static uint32_t header_crc(const header_t *h)
{
    return agent_crc32((const uint8_t *)h, offsetof(header_t, crc));
}

/* The header of one half if that half holds a complete, intact record; else NULL. */
static const header_t *valid_half(unsigned slot, unsigned half)
{
    const uint8_t *sector = flash_sector(sector_of(slot, half));
    const header_t *h = (const header_t *)sector;
    if (h->magic != RECORD_MAGIC || h->len > STORE_RECORD_MAX) {
        return NULL;
    }
    if (header_crc(h) != h->crc) {
        return NULL;
    }
    return agent_crc32(sector + sizeof(header_t), h->len) == h->data_crc ? h : NULL;
}

/* Which half holds the newest intact copy: 0, 1, or -1 for none. */
static int newest_half(unsigned slot)
{
    const header_t *a = valid_half(slot, 0);
    const header_t *b = valid_half(slot, 1);
    if (a && b) {
        return (int32_t)(b->seq - a->seq) > 0 ? 1 : 0;
    }
    return a ? 0 : (b ? 1 : -1);
}

static const header_t *current(unsigned slot)
{
    if (slot >= STORE_SLOTS) {
        return NULL;
    }
    int half = newest_half(slot);
    if (half < 0) {
        return NULL;
    }
    const header_t *h = (const header_t *)flash_sector(sector_of(slot, (unsigned)half));
    return (h->flags & FLAG_DELETED) ? NULL : h;
}

int store_stat(unsigned slot, store_info_t *info)
{
    const header_t *h = current(slot);
    if (h == NULL) {
        return -1;
    }
    info->uid = h->uid;
    info->flags = h->flags;
    info->len = h->len;
    return 0;
}

int store_get(unsigned slot, uint32_t offset, void *buf, size_t len)
{
    const header_t *h = current(slot);
    if (h == NULL || offset > h->len || len > h->len - offset) {
        return -1;
    }
    memcpy(buf, (const uint8_t *)h + sizeof(header_t) + offset, len);
    return 0;
}

static int commit(unsigned slot, uint64_t uid, uint32_t flags, const void *data, size_t len)
{
    if (slot >= STORE_SLOTS || len > STORE_RECORD_MAX) {
        return -1;
    }
    int newest = newest_half(slot);
    unsigned target = newest == 0 ? 1u : 0u;
    uint32_t seq = 1;
    if (newest >= 0) {
        seq = ((const header_t *)flash_sector(sector_of(slot, (unsigned)newest)))->seq + 1u;
    }
    unsigned sector = sector_of(slot, target);
    header_t h = {RECORD_MAGIC, seq, uid, flags, (uint32_t)len, 0, 0};
    h.data_crc = agent_crc32(data, len);
    h.crc = header_crc(&h);
    /* data first, header last: a write cut short leaves no valid header in this half */
    if (flash_erase(sector) != 0 ||
        flash_program(sector, sizeof(header_t), data, len) != 0 ||
        flash_program(sector, 0, &h, sizeof(h)) != 0) {
        return -1;
    }
    return 0;
}

int store_put(unsigned slot, uint64_t uid, uint32_t flags, const void *data, size_t len)
{
    return commit(slot, uid, flags & ~FLAG_DELETED, data, len);
}

int store_delete(unsigned slot)
{
    if (current(slot) == NULL) {
        return slot < STORE_SLOTS ? 0 : -1;
    }
    return commit(slot, 0, FLAG_DELETED, "", 0);
}
