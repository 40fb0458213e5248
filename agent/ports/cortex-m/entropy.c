/*
 * entropy.c - mbedTLS's entropy source on the lab board, and the honest word about it.
 *
 * The mps2-an385 board (in QEMU and in its FPGA image) has no true random number generator.
 * mbedTLS's CTR_DRBG, which PSA uses for key generation and for ECDSA's per-signature nonce,
 * needs one: a guessable seed means a guessable device key. This lab port reads the HOST's
 * /dev/urandom through semihosting (MBEDTLS_ENTROPY_HARDWARE_ALT), so keys are as unguessable
 * as the host's, but the randomness comes from outside the chip over the debug channel. A
 * product must use the chip's TRNG (or a secure element's) here; see docs/agent-porting.md.
 * Without the host's answer there is no entropy, and key generation fails rather than
 * proceeding with a weak key.
 */
#include <stddef.h>

#include "mbedtls/entropy.h"
#include "semihost.h"

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    static int source = -1;
    (void)data;
    *olen = 0;
    if (source < 0) {
        source = sh_open("/dev/urandom", SH_MODE_RB);
        if (source < 0) {
            return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
        }
    }
    long got = sh_read(source, output, len);
    if (got <= 0) {
        return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
    }
    *olen = (size_t)got;
    return 0;
}
