/*
 * main.c - the station agent firmware for the mps2-an385 board: wires the portable core
 * (station_agent.h) to this board's UART, data flash, PSA Crypto and reset.
 *
 * Boot: load the flash (flash.c), read the factory information (serial, model,
 * capabilities), give mbedTLS its static memory pool, start PSA Crypto, then serve the
 * protocol on UART0 forever, sleeping between frames. Diagnostics go to the semihosting
 * console, never to the provisioning UART (docs/board-protocol.md section 1).
 */
#include <string.h>

#include "agent_psa.h"
#include "board.h"
#include "flash.h"
#include "mbedtls/memory_buffer_alloc.h"
#include "semihost.h"
#include "station_agent.h"
#include "store.h"
#include "uart.h"

#define FIRMWARE_VERSION "1.0.0-cm3"
/* mbedTLS's heap. Measured peak: 2.5 KiB (key generation); see docs/agent-porting.md. */
#define MBEDTLS_POOL_SIZE (8u * 1024u)

static agent_t agent;
static agent_hal_t hal;
static board_factory_t factory;
static unsigned char mbedtls_pool[MBEDTLS_POOL_SIZE];

static size_t hal_serial(void *ctx, char *out, size_t cap)
{
    (void)ctx;
    size_t len = strlen(factory.serial);
    if (len > cap) {
        len = cap;
    }
    memcpy(out, factory.serial, len);
    return len;
}

static size_t hal_uart_read(void *ctx, uint8_t *buf, size_t cap)
{
    (void)ctx;
    return uart_read(buf, cap);
}

static void hal_uart_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (strcmp(agent_current_op(&agent), "reset") == 0) {
        /* The station sends its next request as soon as it has this answer, while the chip
         * reboots. With interrupts masked, the receiver holds the first byte (always the
         * station's leading 0x00, harmless to lose) and QEMU keeps the rest until the new
         * firmware reads them, instead of the receive interrupt taking them into a ring the
         * reboot clears and leaving the new firmware half a frame (a NAK the station must
         * recover from). The main loop unmasks again if no reboot follows (a replayed answer). */
        __asm__ volatile("cpsid i" ::: "memory");
    }
    uart_write(data, len);
}

/* The core's records live in store slots 0-4, one per enum agent_record. */
static int hal_store_read(void *ctx, enum agent_record id, uint8_t *buf, size_t cap,
                          size_t *len)
{
    store_info_t info;
    (void)ctx;
    if (store_stat((unsigned)id, &info) != 0) {
        return AGENT_ST_NOT_FOUND;
    }
    if (info.len > cap || store_get((unsigned)id, 0, buf, info.len) != 0) {
        return AGENT_ST_INTERNAL;
    }
    *len = info.len;
    return AGENT_ST_OK;
}

static int hal_store_write(void *ctx, enum agent_record id, const uint8_t *data, size_t len)
{
    (void)ctx;
    return store_put((unsigned)id, (uint64_t)id, 0, data, len) == 0 ? AGENT_ST_OK
                                                                     : AGENT_ST_INTERNAL;
}

static int hal_store_erase(void *ctx, enum agent_record id)
{
    (void)ctx;
    return store_delete((unsigned)id) == 0 ? AGENT_ST_OK : AGENT_ST_INTERNAL;
}

static void hal_reset(void *ctx, int factory_reset)
{
    (void)ctx;
    (void)factory_reset; /* the core erased what a factory reset erases before answering */
    uart_quiesce();
    board_reset();
}

int main(void)
{
    int flash_ok = flash_init() == 0;
    board_factory_load(&factory);
    mbedtls_memory_buffer_alloc_init(mbedtls_pool, sizeof(mbedtls_pool));
    int psa_status = agent_psa_init();

    hal.ctx = NULL;
    hal.caps = factory.caps;
    hal.model = factory.model;
    hal.hw = factory.hw;
    hal.fw = FIRMWARE_VERSION;
    hal.serial = hal_serial;
    hal.uart_read = hal_uart_read;
    hal.uart_write = hal_uart_write;
    hal.store_read = hal_store_read;
    hal.store_write = hal_store_write;
    hal.store_erase = hal_store_erase;
    agent_psa_fill_hal(&hal);
    hal.tpm_transmit = NULL; /* no TPM on this board */
    hal.reset = hal_reset;

    agent_init(&agent, &hal);
    uart_init();
    /* the boot line on the debug console (no printf: it would cost more flash than the core) */
    sh_log("agent: boot serial=");
    sh_log(factory.serial);
    sh_log(" model=");
    sh_log(factory.model);
    sh_log(flash_ok ? " flash=ok" : " flash=FAILED");
    sh_log(psa_status == AGENT_ST_OK ? " psa=ok\n" : " psa=FAILED\n");
    for (;;) {
        size_t got = agent_poll(&agent);
        __asm__ volatile("cpsie i" ::: "memory"); /* see hal_uart_write */
        if (got == 0) {
            uart_wait();
        }
    }
}
