/*
 * flash.h - the board's data flash: 16 sectors of 8 KiB, memory-mapped at 0x00200000, with
 * NOR semantics (erase sets a sector to 0xFF; programming can only clear bits).
 *
 * The mps2 board in QEMU has no flash that keeps its content when QEMU exits, so this driver
 * emulates one: the sectors live in the board's SSRAM (the STORAGE region of the linker
 * script), are loaded at boot from a host file through semihosting, and every erase or
 * program is written through to that file before it returns. That gives the firmware the
 * guarantee a real flash gives (a completed write survives power loss, a reset and a QEMU
 * restart), and the record layer above (store.c) still copes with a write torn by a kill.
 *
 * Layout: sector 0 holds the factory information (read-only to the firmware); sectors 1-14
 * hold the records (store.c); sector 15 is spare.
 */
#ifndef CM_FLASH_H
#define CM_FLASH_H

#include <stddef.h>
#include <stdint.h>

#define FLASH_SECTOR_SIZE 8192u
#define FLASH_SECTORS 16u
#define FLASH_SIZE (FLASH_SECTOR_SIZE * FLASH_SECTORS)
#define FLASH_FACTORY_SECTOR 0u
#define FLASH_FIRST_STORE_SECTOR 1u

/* The host file backing the flash (relative to QEMU's working directory). */
#define FLASH_BACKING_FILE "flash.bin"

/* Load the flash from its backing file (created erased if missing). 0 or -1. */
int flash_init(void);
/* The memory-mapped content of sector s (read directly, like a real memory-mapped flash). */
const uint8_t *flash_sector(unsigned s);
/* Erase sector s to 0xFF. 0 or -1. */
int flash_erase(unsigned s);
/* Program len bytes at offset within sector s; -1 if that would need a bit set back to 1
 * (the range was not erased) or the host write failed. */
int flash_program(unsigned s, uint32_t offset, const void *data, size_t len);

#endif
