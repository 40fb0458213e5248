/*
 * semihost.c - the Arm semihosting calls the lab port needs (see semihost.h).
 *
 * On Cortex-M a semihosting call is "bkpt 0xAB" with the operation in r0 and a pointer to its
 * parameter block in r1; the result comes back in r0.
 */
#include "semihost.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_SEEK = 0x0A,
    SYS_FLEN = 0x0C,
    SYS_EXIT = 0x18,
    SYS_EXIT_EXTENDED = 0x20
};

#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int sh_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int sh_open(const char *path, int mode)
{
    uint32_t args[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
    return sh_call(SYS_OPEN, args);
}

int sh_close(int handle)
{
    uint32_t args[1] = {(uint32_t)handle};
    return sh_call(SYS_CLOSE, args);
}

int sh_write(int handle, const void *data, size_t len)
{
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)data, (uint32_t)len};
    /* SYS_WRITE answers the number of bytes NOT written. */
    return sh_call(SYS_WRITE, args) == 0 ? 0 : -1;
}

long sh_read(int handle, void *buf, size_t len)
{
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    int left = sh_call(SYS_READ, args); /* bytes NOT read */
    if (left < 0 || (size_t)left > len) {
        return -1;
    }
    return (long)(len - (size_t)left);
}

int sh_seek(int handle, uint32_t offset)
{
    uint32_t args[2] = {(uint32_t)handle, offset};
    return sh_call(SYS_SEEK, args) == 0 ? 0 : -1;
}

long sh_flen(int handle)
{
    uint32_t args[1] = {(uint32_t)handle};
    return sh_call(SYS_FLEN, args);
}

void sh_log(const char *text)
{
    static int console = -1;
    if (console < 0) {
        console = sh_open(":tt", SH_MODE_A);
    }
    if (console >= 0) {
        (void)sh_write(console, text, strlen(text));
    }
}

void sh_exit(int status)
{
    uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    (void)sh_call(SYS_EXIT_EXTENDED, args);
    /* a host without SYS_EXIT_EXTENDED: the plain exit (status lost) */
    (void)sh_call(SYS_EXIT, (const void *)(uintptr_t)ADP_STOPPED_APPLICATION_EXIT);
    for (;;) {
    }
}
