/*
 * board.c - interrupts, sleep, reset and factory information of the mps2-an385 board.
 */
#include "board.h"

#include <string.h>

#include "agent_hal.h"
#include "flash.h"

#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define AIRCR_VECTKEY 0x05FA0000u
#define AIRCR_SYSRESETREQ 0x4u

/* First line of a programmed factory sector; the rest is "key=value" lines up to a NUL or an
 * erased (0xFF) byte. Written by the factory programmer (in the lab: station.lab.qemu). */
#define FACTORY_MAGIC "STATION-FACTORY 1\n"
#define DEFAULT_MODEL "LAB-SE-CM3"
#define DEFAULT_HW "mps2-an385"

void nvic_enable_irq(unsigned irq)
{
    NVIC_ISER0 = 1u << irq;
}

void board_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = AIRCR_VECTKEY | AIRCR_SYSRESETREQ;
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}

static void copy_text(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap) {
        len = cap - 1u;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static uint32_t parse_caps(const char *value, size_t len)
{
    static const struct {
        const char *name;
        uint32_t cap;
    } known[] = {{"tpm", AGENT_CAP_TPM},
                 {"se", AGENT_CAP_SE},
                 {"privkey", AGENT_CAP_PRIVKEY},
                 {"symkey", AGENT_CAP_SYMKEY}};
    uint32_t caps = 0;
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && value[end] != ',') {
            end++;
        }
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (strlen(known[i].name) == end - start &&
                memcmp(known[i].name, value + start, end - start) == 0) {
                caps |= known[i].cap;
            }
        }
        start = end + 1u;
    }
    return caps;
}

void board_factory_load(board_factory_t *out)
{
    memset(out, 0, sizeof(*out));
    copy_text(out->model, sizeof(out->model), DEFAULT_MODEL, strlen(DEFAULT_MODEL));
    copy_text(out->hw, sizeof(out->hw), DEFAULT_HW, strlen(DEFAULT_HW));
    out->caps = AGENT_CAP_SE | AGENT_CAP_SYMKEY;

    const char *text = (const char *)flash_sector(FLASH_FACTORY_SECTOR);
    size_t magic = strlen(FACTORY_MAGIC);
    if (memcmp(text, FACTORY_MAGIC, magic) != 0) {
        return;
    }
    size_t end = magic;
    while (end < FLASH_SECTOR_SIZE && text[end] != '\0' && text[end] != (char)0xFF) {
        end++;
    }
    for (size_t line = magic; line < end;) {
        size_t eol = line;
        while (eol < end && text[eol] != '\n') {
            eol++;
        }
        const char *eq = memchr(text + line, '=', eol - line);
        if (eq != NULL) {
            size_t key_len = (size_t)(eq - (text + line));
            const char *value = eq + 1;
            size_t value_len = (size_t)((text + eol) - value);
            if (key_len == 6 && memcmp(text + line, "serial", 6) == 0) {
                copy_text(out->serial, sizeof(out->serial), value, value_len);
            } else if (key_len == 5 && memcmp(text + line, "model", 5) == 0) {
                copy_text(out->model, sizeof(out->model), value, value_len);
            } else if (key_len == 2 && memcmp(text + line, "hw", 2) == 0) {
                copy_text(out->hw, sizeof(out->hw), value, value_len);
            } else if (key_len == 4 && memcmp(text + line, "caps", 4) == 0) {
                out->caps = parse_caps(value, value_len);
            }
        }
        line = eol + 1u;
    }
}
