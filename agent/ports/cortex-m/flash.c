/*
 * flash.c - emulated NOR data flash, written through to a host file (see flash.h).
 */
#include "flash.h"

#include <string.h>

#include "semihost.h"

extern uint8_t _sstorage[];

static int backing = -1;

static uint8_t *sector_base(unsigned s)
{
    return _sstorage + (size_t)s * FLASH_SECTOR_SIZE;
}

static int write_through(uint32_t offset, size_t len)
{
    if (backing < 0 || sh_seek(backing, offset) != 0) {
        return -1;
    }
    return sh_write(backing, _sstorage + offset, len);
}

int flash_init(void)
{
    memset(_sstorage, 0xFF, FLASH_SIZE);
    backing = sh_open(FLASH_BACKING_FILE, SH_MODE_RPLUSB);
    if (backing >= 0) {
        long len = sh_flen(backing);
        if (len < 0) {
            return -1;
        }
        size_t want = (size_t)len < FLASH_SIZE ? (size_t)len : FLASH_SIZE;
        if (sh_seek(backing, 0) != 0 || sh_read(backing, _sstorage, want) != (long)want) {
            return -1;
        }
        if (want == FLASH_SIZE) {
            return 0;
        }
        /* a short file (a factory sector only): extend it with erased sectors */
        return write_through((uint32_t)want, FLASH_SIZE - want);
    }
    backing = sh_open(FLASH_BACKING_FILE, SH_MODE_WPLUSB);
    if (backing < 0) {
        return -1;
    }
    return write_through(0, FLASH_SIZE);
}

const uint8_t *flash_sector(unsigned s)
{
    return s < FLASH_SECTORS ? sector_base(s) : NULL;
}

int flash_erase(unsigned s)
{
    if (s >= FLASH_SECTORS) {
        return -1;
    }
    memset(sector_base(s), 0xFF, FLASH_SECTOR_SIZE);
    return write_through(s * FLASH_SECTOR_SIZE, FLASH_SECTOR_SIZE);
}

int flash_program(unsigned s, uint32_t offset, const void *data, size_t len)
{
    if (s >= FLASH_SECTORS || offset > FLASH_SECTOR_SIZE || len > FLASH_SECTOR_SIZE - offset) {
        return -1;
    }
    uint8_t *dst = sector_base(s) + offset;
    const uint8_t *src = data;
    for (size_t i = 0; i < len; i++) {
        if ((dst[i] & src[i]) != src[i]) {
            return -1; /* NOR flash cannot turn a 0 bit back into 1 without an erase */
        }
    }
    memcpy(dst, src, len);
    return write_through(s * FLASH_SECTOR_SIZE + offset, len);
}
