/*
 * semihost.h - Arm semihosting: calls from the firmware to the debugger (here QEMU, started
 * with -semihosting-config enable=on,target=native) that reach the host's files.
 *
 * The lab port uses it for what an emulated mps2 board does not have: non-volatile memory
 * that outlives the QEMU process (flash.c), an entropy source (entropy.c), a debug console on
 * QEMU's stderr, and a way to end a test firmware with an exit code. A product has none of
 * this: see docs/agent-porting.md.
 */
#ifndef CM_SEMIHOST_H
#define CM_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Open modes (the ISO C fopen modes, in the semihosting numbering). */
#define SH_MODE_RB 1      /* "rb" */
#define SH_MODE_RPLUSB 3  /* "r+b" */
#define SH_MODE_WPLUSB 7  /* "w+b" */
#define SH_MODE_A 8       /* "a": on ":tt" this is the host's stderr */

/* A host file handle, or -1. */
int sh_open(const char *path, int mode);
int sh_close(int handle);
/* Write all of data; 0 on success, -1 if the host wrote less. */
int sh_write(int handle, const void *data, size_t len);
/* Read up to len bytes; returns how many were read (0 at end of file), -1 on error. */
long sh_read(int handle, void *buf, size_t len);
int sh_seek(int handle, uint32_t offset);
/* The file's length, or -1. */
long sh_flen(int handle);
/* Write a NUL-terminated text to the debug console (QEMU's stderr). */
void sh_log(const char *text);
/* End the emulation with an exit status (QEMU exits with it). */
void sh_exit(int status) __attribute__((noreturn));

#endif
