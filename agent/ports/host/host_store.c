/*
 * host_store.c - records as files in the board's state folder.
 */
#define _POSIX_C_SOURCE 200809L
#include "host_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const NAMES[AGENT_REC_COUNT] = {"cert_chain", "dps", "symkey", "privkey",
                                                   "lock"};
static char folder[512];

int host_store_open(const char *dir)
{
    if (strlen(dir) >= sizeof folder - 32u) {
        return -1;
    }
    strcpy(folder, dir);
    if (mkdir(folder, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}

static void record_path(enum agent_record id, const char *suffix, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s%s", folder, NAMES[id], suffix);
}

int host_store_read(void *ctx, enum agent_record id, uint8_t *buf, size_t cap, size_t *len)
{
    char path[600];
    size_t total = 0;
    int fd;
    (void)ctx;
    if ((unsigned)id >= AGENT_REC_COUNT) {
        return AGENT_ST_INTERNAL;
    }
    record_path(id, ".rec", path, sizeof path);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        return errno == ENOENT ? AGENT_ST_NOT_FOUND : AGENT_ST_INTERNAL;
    }
    for (;;) {
        ssize_t n = read(fd, buf + total, cap - total);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            close(fd);
            return AGENT_ST_INTERNAL;
        }
        if (n == 0) {
            break;
        }
        total += (size_t)n;
        if (total == cap) {
            uint8_t extra;
            if (read(fd, &extra, 1) != 0) {
                close(fd);
                return AGENT_ST_INTERNAL; /* larger than any record can be */
            }
            break;
        }
    }
    close(fd);
    *len = total;
    return AGENT_ST_OK;
}

static int sync_folder(void)
{
    int fd = open(folder, O_RDONLY | O_DIRECTORY);
    int st;
    if (fd < 0) {
        return -1;
    }
    st = fsync(fd);
    close(fd);
    return st;
}

int host_store_write(void *ctx, enum agent_record id, const uint8_t *data, size_t len)
{
    char path[600];
    char tmp[600];
    size_t done = 0;
    int fd;
    (void)ctx;
    if ((unsigned)id >= AGENT_REC_COUNT) {
        return AGENT_ST_INTERNAL;
    }
    record_path(id, ".rec", path, sizeof path);
    record_path(id, ".tmp", tmp, sizeof tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return AGENT_ST_INTERNAL;
    }
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            close(fd);
            return AGENT_ST_INTERNAL;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0 || sync_folder() != 0) {
        return AGENT_ST_INTERNAL;
    }
    return AGENT_ST_OK;
}

int host_store_erase(void *ctx, enum agent_record id)
{
    char path[600];
    (void)ctx;
    if ((unsigned)id >= AGENT_REC_COUNT) {
        return AGENT_ST_INTERNAL;
    }
    record_path(id, ".rec", path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT) {
        return AGENT_ST_INTERNAL;
    }
    return sync_folder() == 0 ? AGENT_ST_OK : AGENT_ST_INTERNAL;
}
