/*
 * uart.c - CMSDK APB UART0 driver (see uart.h).
 *
 * The receive interrupt moves each byte into a single-producer/single-consumer ring: the ISR
 * only advances `head`, the main loop only advances `tail`, so no lock is needed on a
 * single-core Cortex-M (both are aligned 32-bit accesses).
 */
#include "uart.h"

#include "board.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INT (*(volatile uint32_t *)(UART0_BASE + 0x0Cu)) /* status / write 1 to clear */
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_EN 0x1u
#define CTRL_RX_EN 0x2u
#define CTRL_RX_INT_EN 0x8u
#define INT_RX 0x2u

#define UART0_RX_IRQ 0u
#define PERIPHERAL_CLOCK_HZ 25000000u
#define BAUD 115200u

/* Power of two; large enough for what arrives during the slowest operation (a key
 * generation) when the station retries a request meanwhile. */
#define RING_SIZE 4096u

static uint8_t ring[RING_SIZE];
static volatile uint32_t head; /* written by the ISR */
static volatile uint32_t tail; /* written by the main loop */
static volatile uint32_t overruns;

void uart_init(void)
{
    head = tail = 0;
    UART_BAUDDIV = PERIPHERAL_CLOCK_HZ / BAUD;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN;
    /* Read the data register once, before the interrupt is on. In QEMU that read is what
     * tells the serial back end to deliver the input it held back while the receiver was
     * off (during a reboot); without it the line can stay silent. The byte is kept: it is
     * either one that just arrived or the reset value 0x00, and a stray 0x00 is only an empty
     * frame, which the protocol ignores (on hardware, stale garbage before the station's
     * leading 0x00 is dropped by resynchronisation the same way). Discarding it lost a real
     * byte whenever one arrived between enabling the receiver and this read. */
    ring[head] = (uint8_t)UART_DATA;
    head = 1u;
    nvic_enable_irq(UART0_RX_IRQ);
}

void UART0_RX_Handler(void);
void UART0_RX_Handler(void)
{
    /* Clear first, then drain: a byte arriving after the last check raises the interrupt
     * again. (Clearing after the loop would lose that interrupt and leave the byte unread,
     * and the receiver stalls.) */
    UART_INT = INT_RX;
    while (UART_STATE & STATE_RX_FULL) {
        uint8_t byte = (uint8_t)UART_DATA;
        uint32_t next = (head + 1u) & (RING_SIZE - 1u);
        if (next == tail) {
            overruns++;
        } else {
            ring[head] = byte;
            head = next;
        }
    }
}

size_t uart_read(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap && tail != head) {
        buf[n++] = ring[tail];
        tail = (tail + 1u) & (RING_SIZE - 1u);
    }
    return n;
}

void uart_wait(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
    if (tail == head) {
        __asm__ volatile("wfi");
    }
    __asm__ volatile("cpsie i" ::: "memory");
}

void uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = data[i];
    }
}

void uart_quiesce(void)
{
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_CTRL = CTRL_TX_EN;
}

uint32_t uart_overruns(void)
{
    return overruns;
}
