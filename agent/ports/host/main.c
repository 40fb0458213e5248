/*
 * main.c - the host port: the station agent as a Linux process on a pseudo-terminal.
 *
 *   station-agent-host --state DIR --kind tpm|se|nokey --serial SN [--model M] [--hw H]
 *                      [--fw F] [--baud B] [--faults TEXT] [--tpm-setup CONF] [--timing]
 *
 * The device key is a PSA persistent key (mbedTLS keeps it as a file in DIR), objects are
 * files in DIR/objects, a `tpm` board runs swtpm on a socket pair (state in DIR/tpm, made by
 * swtpm_setup with CONF on first start). The process prints one JSON line with its port and
 * serves until SIGTERM/SIGINT (exit 0), an injected unplug (exit 3) or its parent's death,
 * the same contract as the Python board (station/lab/boards/process.py). With --timing it logs
 * each request's handling time on stderr ("timing op=write us=123"), for the benchmarks.
 */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent_psa.h"
#include "host_faults.h"
#include "host_store.h"
#include "host_tpm.h"
#include "station_agent.h"

#define EXIT_UNPLUGGED 3
#define TX_CHUNK 64u

typedef struct host {
    int master;
    int slave;
    double byte_time;
    double rx_clock;
    double tx_clock;
    long sent;
    host_faults_t faults;
    uint64_t rng;
    int muted;
    const char *serial;
    host_tpm_t tpm;
    agent_t *agent;
    long tpm_commands;
    int timing;          /* --timing: log each request's handling time to stderr */
    char answered[17];   /* the operation answered during the current agent_feed() */
} host_t;

static volatile sig_atomic_t stopping = 0;
static host_t host;
static agent_t agent;

static void on_signal(int signum)
{
    (void)signum;
    stopping = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double seconds)
{
    struct timespec ts;
    if (seconds <= 0) {
        return;
    }
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stopping) {
    }
}

static void unplug(const char *why)
{
    fprintf(stderr, "fault: %s\n", why);
    close(host.master);
    close(host.slave);
    host_tpm_stop(&host.tpm);
    exit(EXIT_UNPLUGGED);
}

/* Line noise of the flip and drop faults, applied in place; returns the new length. */
static size_t noise(uint8_t *data, size_t len)
{
    size_t i;
    size_t o = 0;
    if (host.faults.flip == 0 && host.faults.drop == 0) {
        return len;
    }
    for (i = 0; i < len; i++) {
        uint8_t byte = data[i];
        if (host.faults.drop > 0 && host_uniform(&host.rng) < host.faults.drop) {
            continue;
        }
        if (host.faults.flip > 0 && host_uniform(&host.rng) < host.faults.flip) {
            byte ^= (uint8_t)(1u << (host_random(&host.rng) % 8u));
        }
        data[o++] = byte;
    }
    return o;
}

static void write_all(const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(host.master, data, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                struct pollfd p = {host.master, POLLOUT, 0};
                (void)poll(&p, 1, 50);
                continue;
            }
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

/* Send on the emulated UART: chunks paced to the baud rate, unplug_after counted. */
static void send_bytes(const uint8_t *data, size_t len)
{
    size_t start;
    for (start = 0; start < len; start += TX_CHUNK) {
        size_t chunk = len - start < TX_CHUNK ? len - start : TX_CHUNK;
        long limit = host.faults.unplug_after;
        if (limit > 0 && host.sent + (long)chunk >= limit) {
            write_all(data + start, (size_t)(limit - host.sent));
            unplug("unplug after a byte count");
        }
        if (host.byte_time > 0) {
            double t = now_s();
            host.tx_clock = (host.tx_clock > t ? host.tx_clock : t) + (double)chunk * host.byte_time;
            sleep_s(host.tx_clock - t);
        }
        write_all(data + start, chunk);
        host.sent += (long)chunk;
    }
}

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
    static uint8_t frame[AGENT_MAX_ENCODED + 2u];
    const char *op = agent_current_op(host.agent);
    (void)ctx;
    strncpy(host.answered, op[0] != '\0' ? op : "nak", sizeof host.answered - 1u);
    if (host.faults.garbage > 0 && host_uniform(&host.rng) < host.faults.garbage) {
        size_t n = 1u + (size_t)(host_random(&host.rng) % 199u);
        size_t i;
        for (i = 0; i < n; i++) {
            frame[i] = (uint8_t)host_random(&host.rng);
        }
        send_bytes(frame, n);
        return;
    }
    if (op[0] != '\0' && strcmp(op, host.faults.mute_once) == 0 && !host.muted) {
        host.muted = 1;
        fprintf(stderr, "fault: muting the first answer to %s\n", op);
        return;
    }
    if (op[0] != '\0' && strcmp(op, host.faults.unplug_at) == 0) {
        send_bytes(data, len / 2u);
        unplug("unplug at an operation");
    }
    memcpy(frame, data, len);
    send_bytes(frame, noise(frame, len));
}

static size_t serial(void *ctx, char *out, size_t cap)
{
    size_t n = strlen(host.serial);
    (void)ctx;
    if (host.faults.no_serial || n > cap) {
        return 0;
    }
    memcpy(out, host.serial, n);
    return n;
}

static int stuck_key_generate(void *ctx)
{
    uint8_t pub[AGENT_P256_PUBLIC_SIZE];
    if (agent_psa_key_public(ctx, pub) == AGENT_ST_OK) {
        return AGENT_ST_OK; /* a counterfeit secure element keeps the key it holds */
    }
    return agent_psa_key_generate(ctx);
}

/* The TPM-level faults of station/lab/boards/tpm_faults.py that need no other TPM's data. */
static int tpm_transmit(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
                        size_t *rsp_len)
{
    static const double profile_codes[][2] = {
        {0x131, 2.0}, {0x153, 1.5}, {0x191, 1.5}, {0x147, 0.5}, {0x15D, 0.3}};
    uint32_t code = ((uint32_t)cmd[6] << 24) | ((uint32_t)cmd[7] << 16) | ((uint32_t)cmd[8] << 8) |
                    cmd[9];
    int sessions = cmd[0] == 0x80 && cmd[1] == 0x02;
    int st;
    (void)ctx;
    host.tpm_commands++;
    if (host.faults.slow_tpm > 0) {
        double seconds = 0.02;
        size_t i;
        for (i = 0; i < sizeof profile_codes / sizeof profile_codes[0]; i++) {
            if ((double)code == profile_codes[i][0]) {
                seconds = profile_codes[i][1];
            }
        }
        sleep_s(seconds * host.faults.slow_tpm);
    }
    if (host.faults.tpm_failure || (host.faults.tpm_lockout && sessions)) {
        uint32_t rc = host.faults.tpm_failure ? 0x101u : 0x921u;
        const uint8_t error[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, (uint8_t)(rc >> 8), (uint8_t)rc};
        memcpy(rsp, error, sizeof error);
        *rsp_len = sizeof error;
        return AGENT_ST_OK;
    }
    st = host_tpm_transmit(&host.tpm, cmd, len, rsp, cap, rsp_len);
    if (st == AGENT_ST_OK && host.tpm_commands == host.faults.bad_tpm_rsp) {
        *rsp_len /= 2u;
    }
    return st;
}

static void make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        return;
    }
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    (void)tcsetattr(fd, TCSANOW, &t);
}

static int open_pty(char *name, size_t cap)
{
    const char *slave_name;
    host.master = posix_openpt(O_RDWR | O_NOCTTY);
    if (host.master < 0 || grantpt(host.master) != 0 || unlockpt(host.master) != 0) {
        return -1;
    }
    slave_name = ptsname(host.master);
    if (slave_name == NULL || strlen(slave_name) >= cap) {
        return -1;
    }
    strcpy(name, slave_name);
    /* keep our own copy of the terminal side open, so stations may close and reopen it */
    host.slave = open(slave_name, O_RDWR | O_NOCTTY);
    if (host.slave < 0) {
        return -1;
    }
    make_raw(host.master);
    make_raw(host.slave);
    (void)fcntl(host.master, F_SETFD, FD_CLOEXEC);
    (void)fcntl(host.slave, F_SETFD, FD_CLOEXEC);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: station-agent-host --state DIR [--kind tpm|se|nokey] [--serial SN] "
                    "[--model M] [--hw H] [--fw F] [--baud B] [--faults TEXT] "
                    "[--tpm-setup CONF] [--timing]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *state = NULL;
    const char *kind = "se";
    const char *model = "LAB-BOARD";
    const char *hw = "rev-B";
    const char *fw = "1.0.0-c";
    const char *faults = "";
    const char *tpm_setup = NULL;
    long baud = 115200;
    char port[128];
    char err[160];
    char cwd_state[4096];
    static agent_hal_t hal;
    int i;
    host.serial = "";
    for (i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--timing") == 0) {
            host.timing = 1;
            continue;
        }
        if (value == NULL) {
            usage();
        }
        if (strcmp(argv[i], "--state") == 0) {
            state = value;
        } else if (strcmp(argv[i], "--kind") == 0) {
            kind = value;
        } else if (strcmp(argv[i], "--serial") == 0) {
            host.serial = value;
        } else if (strcmp(argv[i], "--model") == 0) {
            model = value;
        } else if (strcmp(argv[i], "--hw") == 0) {
            hw = value;
        } else if (strcmp(argv[i], "--fw") == 0) {
            fw = value;
        } else if (strcmp(argv[i], "--baud") == 0) {
            baud = strtol(value, NULL, 10);
        } else if (strcmp(argv[i], "--faults") == 0) {
            faults = value;
        } else if (strcmp(argv[i], "--tpm-setup") == 0) {
            tpm_setup = value;
        } else {
            usage();
        }
        i++;
    }
    if (state == NULL) {
        usage();
    }
    if (host_faults_parse(faults, &host.faults, err, sizeof err) != 0) {
        fprintf(stderr, "station-agent-host: %s\n", err);
        return 2;
    }
    host.rng = host.faults.seed ? host.faults.seed : ((uint64_t)now_s() * 1000003u) ^ (uint64_t)getpid();
    if (host.rng == 0) {
        host.rng = 1;
    }
    host.byte_time = baud > 0 ? 10.0 / (double)baud : 0.0;
    host.master = host.slave = -1;
    host.tpm.data = host.tpm.ctrl = -1;

    memset(&hal, 0, sizeof hal);
    if (strcmp(kind, "tpm") == 0) {
        hal.caps = AGENT_CAP_TPM | AGENT_CAP_SYMKEY;
    } else if (strcmp(kind, "se") == 0) {
        hal.caps = AGENT_CAP_SE | AGENT_CAP_SYMKEY;
    } else if (strcmp(kind, "nokey") == 0) {
        hal.caps = AGENT_CAP_PRIVKEY | AGENT_CAP_SYMKEY;
    } else {
        usage();
    }
    /* everything of the board lives under its state folder; PSA keeps its key files in the
     * current directory */
    if ((mkdir(state, 0700) != 0 && errno != EEXIST) || chdir(state) != 0 ||
        getcwd(cwd_state, sizeof cwd_state) == NULL) {
        fprintf(stderr, "station-agent-host: cannot use state folder %s: %s\n", state,
                strerror(errno));
        return 1;
    }
    if (host_store_open("objects") != 0 || agent_psa_init() != AGENT_ST_OK) {
        fprintf(stderr, "station-agent-host: cannot open the object store or PSA crypto\n");
        return 1;
    }
    if (hal.caps & AGENT_CAP_TPM) {
        char tpm_dir[sizeof cwd_state + 8];
        /* an absolute path, so the TPM's command line names the board it belongs to */
        snprintf(tpm_dir, sizeof tpm_dir, "%s/tpm", cwd_state);
        if (host_tpm_start(&host.tpm, tpm_dir, tpm_setup) != 0) {
            fprintf(stderr, "station-agent-host: the TPM did not start (see swtpm*.log)\n");
            return 1;
        }
        hal.tpm_transmit = tpm_transmit;
    }
    hal.model = model;
    hal.hw = hw;
    hal.fw = fw;
    hal.serial = serial;
    hal.uart_write = uart_write;
    hal.store_read = host_store_read;
    hal.store_write = host_store_write;
    hal.store_erase = host_store_erase;
    agent_psa_fill_hal(&hal);
    if (host.faults.stuck_key) {
        hal.key_generate = stuck_key_generate;
    }
    if (host.faults.no_p384) { /* the core then answers keygen of a P-384 key unsupported */
        hal.op_key_generate = NULL;
        hal.op_key_public = NULL;
        hal.op_key_sign_hash = NULL;
        hal.op_key_destroy = NULL;
        hal.sha384 = NULL;
    }
    host.agent = &agent;
    agent_init(&agent, &hal);

    if (open_pty(port, sizeof port) != 0) {
        fprintf(stderr, "station-agent-host: cannot open a pseudo-terminal: %s\n", strerror(errno));
        host_tpm_stop(&host.tpm);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    {
        char swtpm_pid[32] = "null";
        if (host.tpm.pid > 0) {
            snprintf(swtpm_pid, sizeof swtpm_pid, "%ld", (long)host.tpm.pid);
        }
        printf("{\"port\": \"%s\", \"pid\": %ld, \"swtpm_pid\": %s, \"serial\": \"%s\", "
               "\"kind\": \"%s\", \"firmware\": \"c\"}\n",
               port, (long)getpid(), swtpm_pid, host.serial, kind);
    }
    fflush(stdout);

    {
        pid_t parent = getppid();
        uint8_t buf[4096];
        while (!stopping) {
            struct pollfd p = {host.master, POLLIN, 0};
            int ready = poll(&p, 1, 200);
            ssize_t n;
            if (ready <= 0) {
                if (getppid() != parent) {
                    fprintf(stderr, "lab runner gone; stopping\n");
                    break;
                }
                continue;
            }
            n = read(host.master, buf, sizeof buf);
            if (n <= 0) {
                sleep_s(0.05); /* EIO without a terminal side: cannot happen while we hold one */
                continue;
            }
            if (host.byte_time > 0) {
                /* act on the bytes only when a real UART would have delivered them */
                double t = now_s();
                host.rx_clock = (host.rx_clock > t ? host.rx_clock : t) + (double)n * host.byte_time;
                sleep_s(host.rx_clock - t);
            }
            if (host.timing) {
                /* the board's own time per request, for benchmarks/bench_c_agent.py */
                double start = now_s();
                host.answered[0] = '\0';
                agent_feed(&agent, buf, noise(buf, (size_t)n));
                if (host.answered[0] != '\0') {
                    fprintf(stderr, "timing op=%s us=%.0f\n", host.answered,
                            (now_s() - start) * 1e6);
                }
            } else {
                agent_feed(&agent, buf, noise(buf, (size_t)n));
            }
        }
    }
    close(host.master);
    close(host.slave);
    host_tpm_stop(&host.tpm);
    return 0;
}
