/*
 * syscalls.c - the few newlib system calls the firmware can reach, for a board without an OS.
 *
 * There is no heap: the core allocates nothing and mbedTLS draws from a static pool
 * (MBEDTLS_MEMORY_BUFFER_ALLOC_C in main.c), so _sbrk refuses. Text written to stdout or
 * stderr goes to the semihosting debug console, never to the provisioning UART.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "semihost.h"

void *_sbrk(ptrdiff_t increment);
int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
void _exit(int status);
int _kill(int pid, int sig);
int _getpid(void);

void *_sbrk(ptrdiff_t increment)
{
    (void)increment;
    errno = ENOMEM;
    return (void *)-1;
}

int _write(int fd, const char *buf, int len)
{
    static char line[128];
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    for (int i = 0; i < len; i += (int)sizeof(line) - 1) {
        int n = len - i < (int)sizeof(line) - 1 ? len - i : (int)sizeof(line) - 1;
        memcpy(line, buf + i, (size_t)n);
        line[n] = '\0';
        sh_log(line);
    }
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    errno = EBADF;
    return -1;
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    return fd <= 2;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

void _exit(int status)
{
    sh_exit(status);
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}
