/*
 * hello.c - the boot test firmware: proves the port's startup code, UART (both directions,
 * receive by interrupt), data flash and reset work under QEMU, before any agent code runs.
 *
 * On the provisioning UART it says "hello from mps2-an385, boot N\n", where N counts boots
 * in the flash file (so a reset or a QEMU restart that lost the flash shows). Then it echoes
 * each received byte in brackets, resets the board on 'r', and on 'q' says bye and ends QEMU
 * (exit status 0) at the next byte. tests/cortex_m/test_qemu_boards.py drives it.
 */
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "flash.h"
#include "semihost.h"
#include "uart.h"

#define BOOT_COUNTER_SECTOR (FLASH_SECTORS - 1u)

static void say(const char *text)
{
    uart_write((const uint8_t *)text, strlen(text));
}

int main(void)
{
    char line[64];
    uint32_t boots = 0;
    if (flash_init() != 0) {
        say("hello: no flash\n");
    }
    /* the boot counter lives in the spare sector; an erased sector reads 0xFFFFFFFF */
    memcpy(&boots, flash_sector(BOOT_COUNTER_SECTOR), sizeof(boots));
    boots = boots == 0xFFFFFFFFu ? 1u : boots + 1u;
    if (flash_erase(BOOT_COUNTER_SECTOR) != 0 ||
        flash_program(BOOT_COUNTER_SECTOR, 0, &boots, sizeof(boots)) != 0) {
        say("hello: flash write failed\n");
    }
    uart_init();
    snprintf(line, sizeof(line), "hello from mps2-an385, boot %lu\n", (unsigned long)boots);
    say(line);
    for (;;) {
        uint8_t byte;
        if (uart_read(&byte, 1) == 0) {
            uart_wait();
            continue;
        }
        if (byte == 0) {
            continue; /* the driver's first byte after boot may be the UART's reset value */
        }
        char echo[4] = {'[', (char)byte, ']', '\0'};
        say(echo);
        if (byte == 'r') {
            board_reset();
        }
        if (byte == 'q') {
            /* QEMU exiting closes the pty, and Linux drops what the reader has not read yet:
             * end only when the host acknowledges the goodbye with one more byte */
            say("\nbye\n");
            while (uart_read(&byte, 1) == 0) {
                uart_wait();
            }
            sh_exit(0);
        }
    }
}
