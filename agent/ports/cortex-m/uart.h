/*
 * uart.h - UART0 of the mps2-an385 board (an Arm CMSDK APB UART), the provisioning port.
 *
 * Receive is interrupt-driven into a ring buffer, so bytes the station sends while the agent
 * is busy (a signature takes a while on a Cortex-M3) are kept; transmit is polled.
 */
#ifndef CM_UART_H
#define CM_UART_H

#include <stddef.h>
#include <stdint.h>

/* Enable UART0 at 115200 baud (25 MHz peripheral clock) with its receive interrupt. */
void uart_init(void);
/* Copy up to cap received bytes; returns how many (0: nothing received). */
size_t uart_read(uint8_t *buf, size_t cap);
/* Sleep until a received byte is waiting (returns at once if one is). Race-free: interrupts
 * are masked between the check and the WFI, and a pending interrupt still ends the WFI. */
void uart_wait(void);
/* Send len bytes; returns when the last one is in the transmitter. */
void uart_write(const uint8_t *data, size_t len);
/* Before a reset: wait until the transmitter has taken every byte, then switch the receiver
 * off, so bytes the station sends during the reboot are not taken into a ring the reboot
 * clears (QEMU then holds them until the new firmware switches the receiver on). */
void uart_quiesce(void);
/* Bytes dropped because the ring buffer was full (diagnostics). */
uint32_t uart_overruns(void);

#endif
