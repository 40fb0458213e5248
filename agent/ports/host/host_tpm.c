/*
 * host_tpm.c - swtpm as the board's TPM, as station/lab/boards/tpm.py runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include "host_tpm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_hal.h"

#define STATE_FILE "tpm2-00.permall"
#define IO_TIMEOUT_MS 60000
#define CMD_SHUTDOWN 3u

static void to_dev_null(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) {
            close(fd);
        }
    }
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int waited;
    int status = 0;
    for (waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        if (r < 0) {
            return -1;
        }
        {
            struct timespec ts = {0, 10000000L};
            nanosleep(&ts, NULL);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static int manufacture(const char *dir, const char *setup_config)
{
    char path[600];
    struct stat st;
    pid_t pid;
    snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE);
    if (stat(path, &st) == 0) {
        return 0;
    }
    if (setup_config == NULL) {
        fprintf(stderr, "no TPM state in %s and no --tpm-setup configuration\n", dir);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        to_dev_null();
        execlp("swtpm_setup", "swtpm_setup", "--tpm2", "--tpmstate", dir, "--create-ek-cert",
               "--create-platform-cert", "--overwrite", "--config", setup_config, "--logfile",
               "swtpm_setup.log", (char *)NULL);
        _exit(127);
    }
    if (wait_exit(pid, 60000) != 0 || stat(path, &st) != 0) {
        fprintf(stderr, "swtpm_setup failed; see swtpm_setup.log\n");
        return -1;
    }
    return 0;
}

int host_tpm_start(host_tpm_t *tpm, const char *dir, const char *setup_config)
{
    int data[2];
    int ctrl[2];
    pid_t pid;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    if (manufacture(dir, setup_config) != 0) {
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, data) != 0) {
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctrl) != 0) {
        close(data[0]);
        close(data[1]);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        char state[600];
        char fd_arg[16];
        char ctrl_arg[64];
        close(data[0]);
        close(ctrl[0]);
        snprintf(state, sizeof state, "dir=%s", dir);
        snprintf(fd_arg, sizeof fd_arg, "%d", data[1]);
        snprintf(ctrl_arg, sizeof ctrl_arg, "type=unixio,clientfd=%d", ctrl[1]);
        to_dev_null();
        execlp("swtpm", "swtpm", "chardev", "--tpm2", "--tpmstate", state, "--fd", fd_arg,
               "--ctrl", ctrl_arg, "--flags", "not-need-init,startup-clear", "--log",
               "file=swtpm.log,level=1", (char *)NULL);
        _exit(127);
    }
    close(data[1]);
    close(ctrl[1]);
    (void)fcntl(data[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(ctrl[0], F_SETFD, FD_CLOEXEC);
    tpm->pid = pid;
    tpm->data = data[0];
    tpm->ctrl = ctrl[0];
    return 0;
}

static int io_wait(int fd, short events)
{
    struct pollfd p;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    return poll(&p, 1, IO_TIMEOUT_MS) == 1 ? 0 : -1;
}

static int send_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (io_wait(fd, POLLOUT) != 0) {
            return -1;
        }
        n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int recv_exact(int fd, uint8_t *out, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (io_wait(fd, POLLIN) != 0) {
            return -1;
        }
        n = recv(fd, out, len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

int host_tpm_transmit(host_tpm_t *tpm, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
                      size_t *rsp_len)
{
    uint32_t size;
    if (tpm->data < 0 || cap < 10u) {
        return AGENT_ST_TPM_FAILURE;
    }
    if (send_all(tpm->data, cmd, len) != 0 || recv_exact(tpm->data, rsp, 10) != 0) {
        return AGENT_ST_TPM_FAILURE;
    }
    size = ((uint32_t)rsp[2] << 24) | ((uint32_t)rsp[3] << 16) | ((uint32_t)rsp[4] << 8) | rsp[5];
    if (size < 10u || size > cap || recv_exact(tpm->data, rsp + 10, size - 10u) != 0) {
        return AGENT_ST_TPM_FAILURE;
    }
    *rsp_len = size;
    return AGENT_ST_OK;
}

void host_tpm_stop(host_tpm_t *tpm)
{
    if (tpm->pid <= 0) {
        return;
    }
    if (tpm->ctrl >= 0) {
        const uint8_t shutdown[4] = {0, 0, 0, CMD_SHUTDOWN};
        uint8_t answer[4];
        if (send_all(tpm->ctrl, shutdown, sizeof shutdown) == 0) {
            struct pollfd p = {tpm->ctrl, POLLIN, 0};
            if (poll(&p, 1, 5000) == 1) {
                (void)recv(tpm->ctrl, answer, sizeof answer, 0);
            }
        }
        close(tpm->ctrl);
        tpm->ctrl = -1;
    }
    if (tpm->data >= 0) {
        close(tpm->data);
        tpm->data = -1;
    }
    (void)wait_exit(tpm->pid, 5000);
    tpm->pid = 0;
}
