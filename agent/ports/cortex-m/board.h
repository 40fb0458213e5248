/*
 * board.h - what the firmware needs from the mps2-an385 board itself: interrupts, sleep,
 * reset, and the factory information (serial number, model, capabilities) that the factory
 * programmer writes once into the first flash sector.
 */
#ifndef CM_BOARD_H
#define CM_BOARD_H

#include <stddef.h>
#include <stdint.h>

void nvic_enable_irq(unsigned irq);
/* Reset the whole chip (SYSRESETREQ); QEMU restarts the firmware from its vector table. */
void board_reset(void) __attribute__((noreturn));

/* Factory information (flash sector 0), parsed once at boot by board_factory_load(). */
typedef struct board_factory {
    char serial[65]; /* "" when the board has none (printed on its sticker only) */
    char model[65];
    char hw[33];
    uint32_t caps; /* AGENT_CAP_* */
} board_factory_t;

/* Parse the factory sector; a blank or unreadable sector gives an empty serial, the default
 * model and the secure-element capabilities. */
void board_factory_load(board_factory_t *out);

#endif
